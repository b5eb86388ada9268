import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import SwiftASN1
import Testing
import X509

/// A staged deployment of an image that fails on the canary pauses itself, and the devices
/// outside the canary never receive the image.
@Suite struct StagedRolloutTests {
    @Test func aFailingCanaryHaltsTheRolloutAndTheOthersNeverReceiveIt() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        var devices: [TestDevice] = []
        for _ in 0..<4 { devices.append(try await TestDevice.make(manufacturer: manufacturer)) }
        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/manufacturer.pem"], logger: quietLogger
        ) { local in
            let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
            let contoso = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                _ = try await $0.publishRelease(TestDevice.release)
                return try await $0.createTenant(CreateTenantRequest(name: "Contoso"))
            }
            let tenant = contoso.tenant.id
            func admin<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
                try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root, body)
            }
            let component = ComponentID.random()
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "sensor", "ComponentId": "\#(component)", "EntryPoint": "s.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#.utf8)
            let (group, good, bad) = try await admin { client in
                let product = try await client.createProduct(CreateProductRequest(name: "Thermostat"), tenant: tenant)
                let group = try await client.deviceGroups(tenant: tenant, product: product.id).first { $0.name == "Production" }!
                for device in devices {
                    _ = try await client.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: group.id), tenant: tenant)
                }
                let good = try await client.addImage(
                    package: try ImagePackage.app(manifest: manifest, wasm: Wasm.command, version: "1.0.0", securityVersion: 1).zipped(), tenant: tenant)
                let bad = try await client.addImage(
                    package: try ImagePackage.app(manifest: manifest, wasm: Wasm.trapping, version: "2.0.0", securityVersion: 2).zipped(), tenant: tenant)
                return (group, good, bad)
            }

            // Each simulated device: its own state, credential, update agent and report queue.
            struct Fleet { let device: TestDevice; let state: DeviceState; let transport: DeviceTransport; let agent: UpdateAgent }
            var fleet: [Fleet] = []
            for device in devices {
                let state = DeviceState(directory: "\(directory)/\(device.id.hex.prefix(8))")
                try FileManager.default.createDirectory(atPath: state.directory, withIntermediateDirectories: true)
                let credential = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor)
                let transport = DeviceTransport(server: local.url, rootPEM: root, credential: credential)
                var agent = UpdateAgent(
                    state: state, transport: transport, monitor: device.monitor, serviceRoot: try Certificate(pemEncoded: root), tenant: tenant)
                agent.healthWindow = 0.5
                agent.reporter = FailureReporter(queue: ReportQueue(state: state), deviceId: device.id, systemSoftwareVersion: TestDevice.version)
                fleet.append(Fleet(device: device, state: state, transport: transport, agent: agent))
            }

            _ = try await admin { try await $0.createDeployment(images: [good.id], group: group.id, tenant: tenant) }
            for member in fleet { #expect(try await member.agent.check() == .installed(try await admin { try await $0.deployments(group: group.id, tenant: tenant) }.first?.id)) }

            // The bad version, staged: a quarter of the group (one device) first.
            let staged = try await admin {
                try await $0.createDeployment(images: [bad.id], group: group.id, tenant: tenant, rollout: RolloutRequest(canaryPercent: 25, soakMinutes: 60))
            }
            let rollout = try #require(staged.rollout)
            #expect(rollout.state == .canary && rollout.canaryDevices.count == 1 && rollout.haltThresholdPerThousand == 50)
            let canary = try #require(fleet.first { rollout.canaryDevices.contains($0.device.id) })
            let others = fleet.filter { $0.device.id != canary.device.id }

            // The others check first: nothing to do, and the new image is not theirs to fetch.
            for member in others {
                #expect(try await member.agent.check() == .upToDate)
                let status = try await admin { try await $0.deploymentStatus(device: member.device.id, tenant: tenant) }
                #expect(status.inSync && status.runs?.apps.map(\.imageId) == [good.id], "\(status)")
            }
            let check = try await others[0].transport.updateCheck()
            let listing = try #require(try await others[0].transport.fetch(
                "\(check.repositoryPath!)/targets/\(bad.sha256).\(bad.id).imagepackage", offset: 0, limit: 1 << 20) == nil ? "withheld" : "served")
            #expect(listing == "withheld", "the repository withholds a staged image from a device outside the canary")
            #expect(try await canary.transport.fetch(
                "\(check.repositoryPath!)/targets/\(bad.sha256).\(bad.id).imagepackage", offset: 0, limit: 1 << 20) != nil)

            // The canary installs it, finds it unhealthy, rolls back — and says so.
            #expect(try await canary.agent.check() == .rolledBack("start_failed"))
            #expect(try await ReportQueue(state: canary.state).upload(via: canary.transport) >= 1)

            // The rollout paused itself, and says why.
            let halted = try await admin { try await $0.deployment(staged.id, tenant: tenant) }
            #expect(halted.rollout?.state == .paused && halted.rollout?.pausedBy == "rampart-server", "\(String(describing: halted.rollout))")
            #expect(halted.rollout?.pauseReason?.contains("1 of 1 canary devices failed") == true, "\(String(describing: halted.rollout?.pauseReason))")
            let audit = try await admin { try await $0.auditEntries(tenant: tenant) }
            #expect(audit.contains { $0.action == "deployment.pause" && $0.actor == "rampart-server" && $0.outcome == "crash_rate_exceeded" })

            // The others still never receive it.
            for member in others {
                #expect(try await member.agent.check() == .upToDate)
                let downloads = (try? FileManager.default.contentsOfDirectory(atPath: "\(member.state.directory)/downloads")) ?? []
                #expect(!downloads.contains { $0.hasPrefix(bad.sha256) }, "\(downloads)")
                let slots = SlotStore(directory: member.state.directory)
                #expect(try slots.boot().active.flatMap(slots.images(in:))?.map(\.imageId) == [good.id])
            }

            // People: pausing a paused rollout is refused; resume, pause again with a reason.
            await #expect(throws: APIFailure.self) { _ = try await admin { try await $0.pauseDeployment(staged.id, reason: nil, tenant: tenant) } }
            let resumed = try await admin { try await $0.resumeDeployment(staged.id, tenant: tenant) }
            #expect(resumed.rollout?.state == .canary && resumed.rollout?.resumedAt != nil)
            let paused = try await admin { try await $0.pauseDeployment(staged.id, reason: "investigating", tenant: tenant) }
            #expect(paused.rollout?.state == .paused && paused.rollout?.pauseReason == "investigating" && paused.rollout?.pausedBy == "admin")
            // An unstaged deployment has no rollout to pause.
            let plain = try await admin { try await $0.createDeployment(images: [good.id], group: group.id, tenant: tenant) }
            do {
                _ = try await admin { try await $0.pauseDeployment(plain.id, reason: nil, tenant: tenant) }
                Issue.record("an unstaged deployment was paused")
            } catch let failure as APIFailure {
                #expect(failure.status == 409 && failure.body.error == "rollout_not_running")
            }
            // Bad requests: both canary forms, a stranger as canary, a percent out of range.
            for request in [
                RolloutRequest(canaryPercent: 10, canaryDevices: [devices[0].id]), RolloutRequest(canaryPercent: 100),
                RolloutRequest(canaryDevices: [DeviceID(String(repeating: "0f", count: 32))!]), RolloutRequest(canaryPercent: 50, soakMinutes: 0),
            ] {
                do {
                    _ = try await admin { try await $0.createDeployment(images: [bad.id], group: group.id, tenant: tenant, rollout: request) }
                    Issue.record("accepted \(request)")
                } catch let failure as APIFailure {
                    #expect(failure.status == 400 && failure.body.error == "invalid_field", "\(request): \(failure)")
                }
            }
        }
    }

    @Test func aRolloutCompletesAfterItsSoakUnlessPaused() {
        let now = Date()
        var rollout = Rollout(
            state: .canary, canaryDevices: [DeviceID(String(repeating: "01", count: 32))!], previousDeploymentId: nil,
            soakUntil: now.addingTimeInterval(3600), haltThresholdPerThousand: 50)
        let other = DeviceID(String(repeating: "02", count: 32))!
        #expect(rollout.state(at: now) == .canary && !rollout.reaches(other, at: now) && rollout.reaches(rollout.canaryDevices[0], at: now))
        #expect(rollout.state(at: now.addingTimeInterval(3600)) == .complete && rollout.reaches(other, at: now.addingTimeInterval(3600)))
        rollout.pausedAt = now
        #expect(rollout.state(at: now.addingTimeInterval(7200)) == .paused && !rollout.reaches(other, at: now.addingTimeInterval(7200)))
    }
}
