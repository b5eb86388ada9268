import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTUF
import RampartTestSupport
import Testing
import X509
import SwiftASN1
import NIOHTTP1

/// A device group's TUF repository on a live service, read by python-tuf's reference client
/// and by our own, as the device, over mutual TLS.
@Suite struct UpdateRepositoryTests {
    static let fetchScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scripts/tuf_fetch.py").path

    struct Fleet {
        let local: LocalService
        let root: String
        let tenant: TenantID
        let adminToken: String
        let group: DeviceGroupDocument
        let otherGroup: DeviceGroupDocument
        let image: ImageDocument
        let credential: DeviceSession.Credential

        func admin<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
            try await APIClient.with(server: local.url, token: adminToken, trustRootPEM: root, body)
        }
        func device<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
            try await APIClient.with(server: local.url, token: nil, trustRootPEM: root, credential: credential, body)
        }
        func get(_ path: String, headers: [(String, String)] = []) async throws -> Data {
            try await device { try await $0.send(.GET, path, body: nil, headers: headers).1 }
        }
    }

    /// A service with a tenant, an attested device in its Production group, and an app deployed there.
    func withFleet(_ body: (Fleet, TestDevice) async throws -> Void) async throws {
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
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "telemetry", "ComponentId": "\#(ComponentID.random())", "EntryPoint": "t.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#.utf8)
            let package = try ImagePackage.app(manifest: manifest, wasm: Wasm.command, version: "1.0.0", securityVersion: 1)
            let (group, other, image) = try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root) { client in
                let product = try await client.createProduct(CreateProductRequest(name: "Thermostat"), tenant: tenant)
                let groups = try await client.deviceGroups(tenant: tenant, product: product.id)
                let group = groups.first { $0.name == "Production" }!
                _ = try await client.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: group.id), tenant: tenant)
                let image = try await client.addImage(package: try package.zipped(), tenant: tenant)
                _ = try await client.createDeployment(images: [image.id], group: group.id, tenant: tenant)
                return (group, groups.first { $0.name == "Field Test" }!, image)
            }
            let credential = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor)
            try await body(
                Fleet(local: local, root: root, tenant: tenant, adminToken: contoso.token.secret, group: group, otherGroup: other,
                      image: image, credential: credential),
                device)
        }
    }

    @Test func pythonTUFRefreshesAndDownloadsTheDeployedImage() async throws {
        try await withFleet { fleet, _ in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try fleet.root.write(toFile: "\(directory)/ca.pem", atomically: true, encoding: .utf8)
            try fleet.credential.result.certificateChain.joined().write(toFile: "\(directory)/cert.pem", atomically: true, encoding: .utf8)
            try fleet.credential.clientKeyPEM.write(toFile: "\(directory)/key.pem", atomically: true, encoding: .utf8)
            let run = try await Command.run(
                "/usr/bin/env",
                ["python3", Self.fetchScript, fleet.local.url, fleet.group.id.description, "\(directory)/ca.pem", "\(directory)/cert.pem",
                 "\(directory)/key.pem", "\(directory)/client", "\(fleet.image.id).imagepackage"])
            #expect(run.status == 0, "\(run.output)")
            let line = try #require(run.output.split(separator: "\n").last)
            let result = try JSONValue(parsing: Data(line.utf8))
            guard case .string(let path)? = result["path"], case .string(let imageID)? = result["custom"]?["rampart"]?["imageId"] else {
                Issue.record("unexpected output: \(run.output)")
                return
            }
            #expect(imageID == fleet.image.id.description)
            let downloaded = try Data(contentsOf: URL(fileURLWithPath: path))
            let package = try await fleet.admin { try await $0.imagePackage(fleet.image.id, tenant: fleet.tenant) }
            #expect(downloaded == package, "python-tuf downloaded the signed package, byte for byte")
        }
    }

    @Test func ourClientVerifiesTheRepositoryAndItAnswersOnlyItsDevices() async throws {
        try await withFleet { fleet, _ in
            let base = "/v1/device/tuf/\(fleet.group.id)"
            let now = Date()
            var trusted = try TrustedMetadata(root: try await fleet.get("\(base)/metadata/1.root.json"), now: now)
            try trusted.finishRootUpdates()
            let timestampBytes = try await fleet.get("\(base)/metadata/timestamp.json")
            try trusted.updateTimestamp(timestampBytes)
            try trusted.updateSnapshot(try await fleet.get("\(base)/metadata/\(trusted.timestamp!.snapshot.version).snapshot.json"))
            try trusted.updateTargets(try await fleet.get("\(base)/metadata/\(trusted.snapshot!.targets.version).targets.json"))
            let target = try trusted.target("\(fleet.image.id).imagepackage")
            let bytes = try await fleet.get("\(base)/targets/\(target.sha256).\(fleet.image.id).imagepackage")
            try target.verify(bytes)
            // The package verifies under the image signature too, for the device's tenant.
            try await ImagePackageVerifier(root: try Certificate(pemEncoded: fleet.root)).verify(
                try ImagePackage(zipped: bytes), tenant: fleet.tenant, now: now)
            // deployment.json, a signed target, carries the policy.
            let deploymentTarget = try trusted.target("deployment.json")
            let deployment = try JSONValue(parsing: try await fleet.get("\(base)/targets/\(deploymentTarget.sha256).deployment.json"))
            #expect(deployment["appsManaged"] == .bool(true))

            // Nothing changed: asking again gives the same timestamp.
            #expect(try await fleet.get("\(base)/metadata/timestamp.json") == timestampBytes)
            // A new deployment moves every version on.
            _ = try await fleet.admin { try await $0.createDeployment(images: [], group: fleet.group.id, tenant: fleet.tenant) }
            try trusted.updateTimestamp(try await fleet.get("\(base)/metadata/timestamp.json"))
            try trusted.updateSnapshot(try await fleet.get("\(base)/metadata/\(trusted.timestamp!.snapshot.version).snapshot.json"))
            try trusted.updateTargets(try await fleet.get("\(base)/metadata/\(trusted.snapshot!.targets.version).targets.json"))
            #expect(trusted.targets!.common.version == 2 && (try? trusted.target("\(fleet.image.id).imagepackage")) == nil)
            // The image stays fetchable for devices mid-update, resumable from an offset.
            let tail = try await fleet.get(
                "\(base)/targets/\(target.sha256).\(fleet.image.id).imagepackage", headers: [("Range", "bytes=100-")])
            #expect(tail == bytes.dropFirst(100))

            // What is not there is 404: the next root, a hash the group never listed, another group's repository.
            for path in ["\(base)/metadata/2.root.json", "\(base)/metadata/9.targets.json", "\(base)/metadata/other.json",
                         "\(base)/targets/\(String(repeating: "0", count: 64)).\(fleet.image.id).imagepackage",
                         "/v1/device/tuf/\(fleet.otherGroup.id)/metadata/timestamp.json"] {
                do {
                    _ = try await fleet.get(path)
                    Issue.record("\(path) answered")
                } catch let failure as APIFailure {
                    #expect(failure.status == 404, "\(path): \(failure)")
                }
            }
            // A user token is not a device.
            await #expect(throws: APIFailure.self) {
                try await fleet.admin { try await $0.send(.GET, "\(base)/metadata/timestamp.json", body: nil) }
            }
        }
    }
}
