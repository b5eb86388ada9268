import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing

/// The two routes an attested device uses around updates, over real mutual TLS: check in
/// (`update-check`) and report (`update-state`); and what the operator then sees.
@Suite struct DeviceUpdateRoutesTests {
    @Test func aDeviceChecksInAndItsReportsBecomeItsStatus() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        let device = try await TestDevice.make(manufacturer: manufacturer)

        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/manufacturer.pem"], logger: quietLogger
        ) { local in
            let login = try await LoginCommand.login(
                server: local.url, token: local.bootstrapToken, fingerprint: local.rootCAFingerprint, caFile: nil)
            let root = try #require(login.rootPEM)
            let contoso = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                _ = try await $0.publishRelease(TestDevice.release)
                return try await $0.createTenant(CreateTenantRequest(name: "Contoso"))
            }
            let tenant = contoso.tenant.id
            func admin<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
                try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root, body)
            }
            let group = try await admin { client in
                let product = try await client.createProduct(CreateProductRequest(name: "Thermostat"), tenant: tenant)
                let group = try await client.deviceGroups(tenant: tenant, product: product.id).first { $0.name == "Production" }!
                _ = try await client.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: group.id), tenant: tenant)
                return group
            }
            let credential = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor)
            func asDevice<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
                try await APIClient.with(server: local.url, token: nil, trustRootPEM: root, credential: credential, body)
            }

            // First contact: in its group, nothing deployed, nothing asked.
            let first = try await asDevice { try await $0.updateCheck() }
            #expect(first == UpdateCheckResponse(
                tenantId: tenant, deviceGroupId: group.id, deploymentId: nil, checkNow: false, nextContactAfter: 300,
                repositoryPath: "/v1/device/tuf/\(group.id)"))

            // The operator deploys an app and asks the group to check now.
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "telemetry", "ComponentId": "\#(ComponentID.random())", "EntryPoint": "t.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#.utf8)
            let package = try ImagePackage.app(manifest: manifest, wasm: Wasm.command, version: "1.0.0", securityVersion: 1)
            let (image, deployment) = try await admin { client in
                let image = try await client.addImage(package: try package.zipped(), tenant: tenant)
                let deployment = try await client.createDeployment(images: [image.id], group: group.id, tenant: tenant)
                _ = try await client.requestUpdateNow(group: group.id, tenant: tenant)
                return (image, deployment)
            }
            let asked = try await asDevice { try await $0.updateCheck() }
            #expect(asked.checkNow && asked.deploymentId == deployment.id)

            // The device reports as it goes; each report becomes its status.
            let before = RunningSoftware(systemSoftware: .init(version: TestDevice.release.version), apps: [])
            let after = RunningSoftware(
                systemSoftware: .init(version: TestDevice.release.version),
                apps: [.init(componentId: image.componentId, imageId: image.id, version: image.version)])
            try await asDevice { try await $0.reportUpdateState(DeviceUpdateReport(sequence: 1, deploymentId: deployment.id, state: .installed, running: before)) }
            var status = try await admin { try await $0.deploymentStatus(device: device.id, tenant: tenant) }
            #expect(status.reason == "awaiting_health_check" && !status.inSync)
            #expect(try await asDevice { try await $0.updateCheck() }.checkNow == false, "a report answers the update-now request")

            try await asDevice { try await $0.reportUpdateState(DeviceUpdateReport(sequence: 2, deploymentId: deployment.id, state: .confirmed, running: after)) }
            status = try await admin { try await $0.deploymentStatus(device: device.id, tenant: tenant) }
            #expect(status.inSync && status.state == .confirmed && status.reason == nil, "\(status)")
            #expect(status.runs == after)

            // A repeated report changes nothing; an older one is refused and says what the service has.
            try await asDevice { try await $0.reportUpdateState(DeviceUpdateReport(sequence: 2, deploymentId: deployment.id, state: .confirmed, running: after)) }
            await #expect(throws: APIFailure.self) {
                try await asDevice { try await $0.reportUpdateState(DeviceUpdateReport(sequence: 1, deploymentId: deployment.id, state: .pending, running: before)) }
            }
            do {
                try await asDevice { try await $0.reportUpdateState(DeviceUpdateReport(sequence: 1, deploymentId: deployment.id, state: .pending, running: before)) }
            } catch let failure as APIFailure {
                #expect(failure.status == 409 && failure.body.error == "report_stale" && failure.body.message.contains("report 2"))
            }
            // A failure must say why, in a known word; a deployment of nobody is not found.
            for (report, code) in [
                (DeviceUpdateReport(sequence: 3, deploymentId: deployment.id, state: .failed, running: before), "invalid_field"),
                (DeviceUpdateReport(sequence: 3, deploymentId: deployment.id, state: .rolledBack, reason: "bad luck", running: before), "invalid_field"),
                (DeviceUpdateReport(sequence: 3, deploymentId: .random(), state: .pending, running: before), "deployment_not_found"),
            ] {
                do {
                    try await asDevice { try await $0.reportUpdateState(report) }
                    Issue.record("\(report.state) was accepted")
                } catch let failure as APIFailure {
                    #expect(failure.body.error == code, "\(failure)")
                }
            }
            status = try await admin { try await $0.deploymentStatus(device: device.id, tenant: tenant) }
            #expect(status.state == .confirmed, "refused reports changed nothing")

            // Without the device certificate, neither route answers; a user token is no device.
            await #expect(throws: APIFailure.self) {
                try await APIClient.with(server: local.url, token: nil, trustRootPEM: root) { try await $0.updateCheck() }
            }
            await #expect(throws: APIFailure.self) { try await admin { try await $0.updateCheck() } }
        }
    }
}
