import Crypto
import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartTestSupport
import SwiftASN1
import Testing
import X509

/// Power loss during an install, rehearsed at every checkpoint: `rampartd update` is
/// SIGKILLed there (RAMPARTD_KILL_AT), started again, and each time the device must run a
/// complete, validly signed set of apps — the old or the new — and the service must show
/// what the disk says. Zero bricks.
@Suite struct PowerLossTests {
    /// A provisioned rampartd (software DICE) claimed into Production of a live service that
    /// trusts its build, and three versions of one app added (not deployed).
    struct Environment {
        let directory: String
        let local: LocalService
        let root: String
        let tenant: TenantID
        let adminToken: String
        let group: DeviceGroupDocument
        let images: [ImageDocument]
        let record: ProvisioningRecord
        var state: [String] { ["--state-dir", "\(directory)/device"] }

        func admin<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
            try await APIClient.with(server: local.url, token: adminToken, trustRootPEM: root, body)
        }
        func deploy(_ image: ImageDocument) async throws {
            _ = try await admin { try await $0.createDeployment(images: [image.id], group: group.id, tenant: tenant) }
        }
    }

    static func withEnvironment(_ body: (Environment) async throws -> Void) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rampartd = RampartdBinaryTests.binary
        #expect(try await Command.run(rampartd, ["manufacturer-ca", "--out", "\(directory)/mfg"]).status == 0)
        let provisioned = try await Command.run(
            rampartd,
            ["provision", "--manufacturer-cert", "\(directory)/mfg/ca.pem", "--manufacturer-key", "\(directory)/mfg/ca.key", "--json",
             "--state-dir", "\(directory)/device"])
        #expect(provisioned.status == 0, "\(provisioned.output)")
        let record = try JSONDecoder.rampart.decode(ProvisioningRecord.self, from: Data(provisioned.output.utf8))
        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/mfg/ca.pem"], logger: quietLogger
        ) { local in
            let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
            let executable = try Data(contentsOf: URL(fileURLWithPath: rampartd))
            let contoso = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                _ = try await $0.publishRelease(PublishReleaseRequest(version: "0.1.0", measurement: SHA256.hash(data: executable).hexString))
                return try await $0.createTenant(CreateTenantRequest(name: "Contoso"))
            }
            let tenant = contoso.tenant.id
            let component = ComponentID.random()
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "blink", "ComponentId": "\#(component)", "EntryPoint": "b.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#.utf8)
            let (group, images) = try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root) { client in
                let product = try await client.createProduct(CreateProductRequest(name: "Thermostat"), tenant: tenant)
                let group = try await client.deviceGroups(tenant: tenant, product: product.id).first { $0.name == "Production" }!
                _ = try await client.claimDevice(ClaimDeviceRequest(record: record, deviceGroupId: group.id), tenant: tenant)
                var images: [ImageDocument] = []
                for version in ["1.0.0", "1.0.1", "1.0.2"] {
                    let package = try ImagePackage.app(manifest: manifest, wasm: Wasm.command, version: version, securityVersion: 1)
                    images.append(try await client.addImage(package: try package.zipped(), tenant: tenant))
                }
                return (group, images)
            }
            try await body(
                Environment(
                    directory: directory, local: local, root: root, tenant: tenant, adminToken: contoso.token.secret, group: group,
                    images: images, record: record))
        }
    }

    @Test func aKillAtAnyStepOfAnInstallLeavesAVerifiedSlotAndATruthfulReport() async throws {
        try await Self.withEnvironment { env in
            let rampartd = RampartdBinaryTests.binary
            let (local, root, tenant, group, images, record, directory, state) =
                (env.local, env.root, env.tenant, env.group, env.images, env.record, env.directory, env.state)
            func admin<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T { try await env.admin(body) }
            let update = ["update", "--server", local.url, "--fingerprint", local.rootCAFingerprint, "--timeout", "20", "--health-window", "1"] + state
            let slots = SlotStore(directory: "\(directory)/device")
            let verifier = ImagePackageVerifier(root: try Certificate(pemEncoded: root))

            /// The apps of the active slot, each package re-verified; throws if any does not verify.
            func verifiedRunning() async throws -> [ImageID] {
                let boot = try slots.boot()
                guard let active = boot.active else { return [] }
                let installed = try #require(slots.images(in: active), "the active slot \(active) has no slot.json")
                for image in installed {
                    let bytes = try #require(FileManager.default.contents(atPath: slots.packagePath(active, image.imageId)))
                    try await verifier.verify(try ImagePackage(zipped: bytes), tenant: tenant, now: Date())
                }
                return installed.map(\.imageId)
            }

            _ = try await admin { try await $0.createDeployment(images: [images[0].id], group: group.id, tenant: tenant) }
            let first = try await Command.run(rampartd, update)
            #expect(first.status == 0, "\(first.output)")
            #expect(try await verifiedRunning() == [images[0].id])

            var killedAt: [String] = []
            for checkpoint in UpdateCheckpoint.allCases {
                let before = try await verifiedRunning()
                let rolledBack = Set(try slots.boot().lastRollback?.imageIds ?? [])
                let next = try #require(images.first { !before.contains($0.id) && !rolledBack.contains($0.id) })
                _ = try await admin { try await $0.createDeployment(images: [next.id], group: group.id, tenant: tenant) }

                let killed = try await Command.run(rampartd, update, environment: ["RAMPARTD_KILL_AT": checkpoint.rawValue])
                if killed.status == 137 { killedAt.append(checkpoint.rawValue) } else {
                    #expect(killed.status == 0, "\(checkpoint): \(killed.output)")
                }
                // Right after the kill: what would boot is complete and verifies, old or new.
                let afterKill = try await verifiedRunning()
                #expect(afterKill == before || afterKill == [next.id], "\(checkpoint): runs \(afterKill)")

                let restarted = try await Command.run(rampartd, update)
                #expect(restarted.status == 0, "\(checkpoint): \(restarted.output)")
                let after = try await verifiedRunning()
                #expect(after == before || after == [next.id], "\(checkpoint): runs \(after)")
                #expect(try slots.boot().trial == nil, "\(checkpoint): no trial left armed")
                // The service shows what the disk says.
                let status = try await admin { try await $0.deploymentStatus(device: record.deviceId, tenant: tenant) }
                #expect(status.runs?.apps.map(\.imageId) == after, "\(checkpoint): \(status)")
                if after == [next.id] {
                    #expect(status.state == .confirmed && status.inSync, "\(checkpoint): \(status)")
                } else {
                    #expect(status.state == .rolledBack && status.detail?.contains("interrupted") == true, "\(checkpoint): \(status)")
                }
            }
            #expect(killedAt.count >= 20, "killed at \(killedAt.count) points: \(killedAt)")
        }
    }

    /// `rampartd run` checks at start, then contacts the service every --contact-interval and
    /// checks at once when an operator asked the group to update now.
    @Test func runInstallsAtStartAndHonoursUpdateNowAtItsNextContact() async throws {
        try await Self.withEnvironment { env in
            try await env.deploy(env.images[0])
            let device = try Spawned(
                RampartdBinaryTests.binary,
                ["run", "--server", env.local.url, "--fingerprint", env.local.rootCAFingerprint, "--contact-interval", "0.5",
                 "--update-interval", "3600", "--timeout", "20", "--health-window", "1"] + env.state,
                log: "\(env.directory)/rampartd.log")
            let first = try await device.waitForOutput(containing: "update check: installed", seconds: 60)
            #expect(first.contains("attested"), "\(first)")
            // The health check's apps keep running under `run`.
            #expect(first.contains("app started"), "\(first)")
            try await env.deploy(env.images[1])
            _ = try await env.admin { try await $0.requestUpdateNow(group: env.group.id, tenant: env.tenant) }
            var status = try await env.admin { try await $0.deploymentStatus(device: env.record.deviceId, tenant: env.tenant) }
            for _ in 0..<100 where !(status.inSync && status.runs?.apps.map(\.imageId) == [env.images[1].id]) {
                try await Task.sleep(for: .milliseconds(200))
                status = try await env.admin { try await $0.deploymentStatus(device: env.record.deviceId, tenant: env.tenant) }
            }
            #expect(status.inSync && status.state == .confirmed && status.runs?.apps.map(\.imageId) == [env.images[1].id], "\(status)")
            #expect(try await device.terminate() == 0)
        }
    }
}
