import Foundation
@testable import RampartCLI
@testable import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTUF
import RampartTestSupport
import SwiftASN1
import Testing
import WAT
import X509

/// The device's update agent against a live service: install and confirm, a trapping app
/// rolled back, an older security version refused, tampered and endless targets refused —
/// each shown truthfully in the service's deployment status.
@Suite struct UpdateAgentTests {
    /// Wraps the real transport and damages what it fetches.
    struct TamperingTransport: UpdateTransport {
        enum Damage: Sendable { case flipByte, endless }
        let inner: DeviceTransport
        let damage: Damage

        func updateCheck() async throws -> UpdateCheckResponse { try await inner.updateCheck() }
        func report(_ report: DeviceUpdateReport) async throws { try await inner.report(report) }
        func fetch(_ path: String, offset: Int, limit: Int) async throws -> Data? {
            guard var bytes = try await inner.fetch(path, offset: offset, limit: limit) else { return nil }
            guard path.contains("/targets/"), path.hasSuffix(".imagepackage") else { return bytes }
            switch damage {
            case .flipByte: bytes[bytes.startIndex + bytes.count / 2] ^= 0x01
            case .endless: bytes.append(Data(repeating: 0x41, count: 1 << 20))
            }
            return bytes
        }
    }

    /// A man in the middle with the device's own TLS credential: answers with metadata it
    /// recorded earlier instead of the repository's current files.
    final class ReplayingTransport: UpdateTransport, @unchecked Sendable {
        let inner: DeviceTransport
        private let lock = NSLock()
        private var recorded: [String: Data] = [:]
        private var replaying: Set<String> = []

        init(inner: DeviceTransport) { self.inner = inner }

        /// From now on, answer requests whose path ends in one of `suffixes` with what was recorded for it.
        func replay(_ suffixes: Set<String>) { lock.withLock { replaying = suffixes } }
        /// What was recorded for a path ending in `suffix`.
        func recording(endingIn suffix: String) -> Data? { lock.withLock { recorded.first { $0.key.hasSuffix(suffix) }?.value } }
        func substitute(_ suffix: String, with bytes: Data) { lock.withLock { recorded[suffix] = bytes; replaying.insert(suffix) } }

        func updateCheck() async throws -> UpdateCheckResponse { try await inner.updateCheck() }
        func report(_ report: DeviceUpdateReport) async throws { try await inner.report(report) }
        func fetch(_ path: String, offset: Int, limit: Int) async throws -> Data? {
            let replayed: Data? = lock.withLock {
                guard let suffix = replaying.first(where: { path.hasSuffix($0) }) else { return nil }
                return recorded[suffix] ?? recorded.first(where: { $0.key.hasSuffix(suffix) })?.value
            }
            if let replayed { return replayed }
            let bytes = try await inner.fetch(path, offset: offset, limit: limit)
            if let bytes { lock.withLock { recorded[path] = bytes } }
            return bytes
        }
    }

    struct Setup {
        let fleet: UpdateRepositoryTests.Fleet
        let device: TestDevice
        let state: DeviceState
        let componentId: ComponentID

        /// Adds the app at `version` with `wasm`, deploys it alone, and returns the image.
        func deploy(_ version: String, securityVersion: Int, wasm: Data = Wasm.command) async throws -> ImageDocument {
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "telemetry", "ComponentId": "\#(componentId)", "EntryPoint": "t.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#.utf8)
            let package = try ImagePackage.app(manifest: manifest, wasm: wasm, version: version, securityVersion: securityVersion)
            return try await fleet.admin { client in
                let image = try await client.addImage(package: try package.zipped(), tenant: fleet.tenant)
                _ = try await client.createDeployment(images: [image.id], group: fleet.group.id, tenant: fleet.tenant)
                return image
            }
        }

        func agent(_ damage: TamperingTransport.Damage? = nil) throws -> UpdateAgent {
            let transport = DeviceTransport(server: fleet.local.url, rootPEM: fleet.root, credential: fleet.credential)
            var agent = UpdateAgent(
                state: state, transport: damage.map { TamperingTransport(inner: transport, damage: $0) } ?? transport,
                monitor: device.monitor, serviceRoot: try Certificate(pemEncoded: fleet.root), tenant: fleet.tenant)
            agent.healthWindow = 1
            return agent
        }

        func status() async throws -> DeploymentStatusDocument {
            try await fleet.admin { try await $0.deploymentStatus(device: device.id, tenant: fleet.tenant) }
        }

        /// The apps of the slot that runs.
        var running: [ImageID] {
            let slots = SlotStore(directory: state.directory)
            return ((try? slots.boot().active).flatMap { $0 }.flatMap(slots.images(in:)) ?? []).map(\.imageId)
        }
    }

    @Test func installsConfirmsRollsBackAndRefuses() async throws {
        try await UpdateRepositoryTests().withFleet { fleet, device in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let setup = Setup(fleet: fleet, device: device, state: DeviceState(directory: directory), componentId: .random())

            // v1: installed into slot a, started, committed, counter raised, confirmed.
            let v1 = try await setup.deploy("1.0.0", securityVersion: 1)
            #expect(try await setup.agent().check() == .installed(try await setup.status().shouldRun?.deploymentId))
            #expect(setup.running == [v1.id])
            var status = try await setup.status()
            #expect(status.state == .confirmed && status.inSync, "\(status)")
            #expect(try await device.monitor.counter(.component(setup.componentId)) == 1)
            #expect(try await setup.agent().check() == .upToDate)

            // An app that traps at start: switched to, found unhealthy, switched back.
            _ = try await setup.deploy("2.0.0-bad", securityVersion: 2, wasm: Wasm.trapping)
            #expect(try await setup.agent().check() == .rolledBack("start_failed"))
            #expect(setup.running == [v1.id])
            status = try await setup.status()
            #expect(status.state == .rolledBack && status.reason == "rolled_back" && status.detail?.contains("trapped") == true, "\(status)")
            #expect(try await device.monitor.counter(.component(setup.componentId)) == 1, "a failed start raises no counter")
            #expect(try await setup.agent().check() == .rolledBack("start_failed"), "not retried until something changes")

            // A tampered byte, then an endless stream: refused before anything is installed.
            let v2 = try await setup.deploy("2.0.0", securityVersion: 2)
            #expect(try await setup.agent(.flipByte).check() == .failed("target_hash_mismatch"))
            status = try await setup.status()
            #expect(status.reason == "verification_failed" && status.detail?.contains("target_hash_mismatch") == true, "\(status)")
            #expect(try await setup.agent(.endless).check() == .failed("target_too_large"))
            #expect(try await setup.status().reason == "download_failed")
            #expect(setup.running == [v1.id])

            // The genuine v2 installs; then an older security version is refused.
            #expect(try await setup.agent().check() == .installed(try await setup.status().shouldRun?.deploymentId))
            #expect(setup.running == [v2.id])
            #expect(try await device.monitor.counter(.component(setup.componentId)) == 2)
            // A frozen repository: a man in the middle keeps serving the timestamp he saw, and
            // the device's clock moves on past its expiry.
            let replaying = ReplayingTransport(
                inner: DeviceTransport(server: fleet.local.url, rootPEM: fleet.root, credential: fleet.credential))
            var agent = UpdateAgent(
                state: setup.state, transport: replaying, monitor: device.monitor, serviceRoot: try Certificate(pemEncoded: fleet.root),
                tenant: fleet.tenant)
            agent.healthWindow = 1
            #expect(try await agent.check() == .upToDate)
            let stale = try #require(replaying.recording(endingIn: "/timestamp.json"))
            replaying.replay(["/timestamp.json"])
            let later = Date().addingTimeInterval(25 * 3600)
            agent.now = { later }
            #expect(try await agent.check() == .failed("tuf_metadata_expired"))
            #expect(try await setup.status().state == .failed, "the service hears of the refusal")
            agent.now = { Date() }

            // Mix and match: the current timestamp, with the snapshot it names swapped for an older one.
            let oldSnapshot = try #require(replaying.recording(endingIn: ".snapshot.json"))
            replaying.replay([])
            _ = try await setup.deploy("3.0.0", securityVersion: 3)
            let current = try JSONValue(parsing: try #require(try await replaying.inner.fetch(
                "\(try await replaying.inner.updateCheck().repositoryPath!)/metadata/timestamp.json", offset: 0, limit: 1 << 16)))
            guard case .integer(let snapshotVersion)? = current["signed"]?["meta"]?["snapshot.json"]?["version"] else {
                Issue.record("no snapshot version in the timestamp")
                return
            }
            replaying.substitute("/\(snapshotVersion).snapshot.json", with: oldSnapshot)
            #expect(try await agent.check() == .failed("tuf_snapshot_mismatch"))
            #expect(setup.running == [v2.id], "nothing installed from mixed metadata")

            _ = try await setup.deploy("1.5.0", securityVersion: 1)
            #expect(try await setup.agent().check() == .failed("security_version_too_low"))
            status = try await setup.status()
            #expect(status.reason == "security_version_too_low" && status.runs?.apps.map(\.imageId) == [v2.id], "\(status)")
            #expect(setup.running == [v2.id])

            // Rollback across checks: an older, still unexpired timestamp (and the snapshot and
            // targets it names, which the service still has) after the device trusted newer ones.
            replaying.substitute("/timestamp.json", with: stale)
            replaying.replay(["/timestamp.json"])
            #expect(try await agent.check() == .failed("tuf_version_rollback"))
            #expect(setup.running == [v2.id])
        }
    }

    /// An app holding `SoftwareUpdateDeferral` puts an install off (the service says
    /// `deferred`); the deferral is kept across checks, and never beyond 24 hours from the
    /// first announcement.
    @Test func anAppDefersAnInstallWithinTheBound() async throws {
        try await UpdateRepositoryTests().withFleet { fleet, device in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let setup = Setup(fleet: fleet, device: device, state: DeviceState(directory: directory), componentId: .random())
            let supervisor = AppSupervisor(environment: AppEnvironment(directory: URL(fileURLWithPath: "\(directory)/apps"), tenantID: fleet.tenant))
            // Defers by `minutes` whenever an update is pending; stops on terminate.
            func deferrer(_ minutes: Int) throws -> AppDefinition {
                let wasm = try wat2wasm("""
                    (module
                      (import "rampart" "event_wait" (func $wait (param i32 i32 i32 i32) (result i32)))
                      (import "rampart" "update_defer" (func $defer (param i32) (result i32)))
                      (memory (export "memory") 1)
                      (func (export "_start") (local $kind i32)
                        (loop $events
                          (local.set $kind (call $wait (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 64)))
                          (if (i32.eq (local.get $kind) (i32.const 2)) (then (drop (call $defer (i32.const \(minutes))))))
                          (br_if $events (i32.ne (local.get $kind) (i32.const 1))))))
                    """)
                let manifest = try AppManifest(json: Data("""
                    {"SchemaVersion": 1, "Name": "controller", "ComponentId": "\(ComponentID.random())", "EntryPoint": "c.wasm",
                     "Capabilities": {"SoftwareUpdateDeferral": true}, "Limits": {"MemoryKB": 128}}
                    """.utf8))
                return AppDefinition(manifest: manifest, wasm: Data(wasm))
            }
            let controller = try deferrer(90)
            try supervisor.start(controller)
            try await Task.sleep(for: .milliseconds(200))
            func agent(at offset: TimeInterval = 0) throws -> UpdateAgent {
                var agent = try setup.agent()
                agent.apps = supervisor
                agent.deferralAnswerWindow = 0.5
                agent.now = { Date().addingTimeInterval(offset) }
                return agent
            }

            let v1 = try await setup.deploy("1.0.0", securityVersion: 1)
            guard case .deferred(let until) = try await agent().check() else { Issue.record("not deferred"); return }
            #expect(abs(until.timeIntervalSinceNow - 90 * 60) < 30)
            var status = try await setup.status()
            #expect(status.reason == "deferred" && !status.inSync, "\(status)")
            #expect(setup.running.isEmpty)
            // Kept: an hour later it is still deferred, without asking again.
            guard case .deferred(let still) = try await agent(at: 3600).check() else { Issue.record("no longer deferred"); return }
            #expect(abs(still.timeIntervalSince(until)) < 1)

            // Two hours later the deferral has lapsed; the app is gone, so nobody defers again.
            await supervisor.stop(controller.manifest.componentId)
            #expect(try await agent(at: 7200).check() == .installed(try await setup.status().shouldRun?.deploymentId))
            #expect(setup.running == [v1.id])
            status = try await setup.status()
            #expect(status.state == .confirmed, "\(status)")

            // The bound: an app that defers by a day each time gets at most 24 h from the first announcement.
            let stubborn = try deferrer(1440)
            try supervisor.start(stubborn)
            try await Task.sleep(for: .milliseconds(200))
            let first = try #require(try await agent().deferral(of: nil))
            #expect(abs(first.timeIntervalSinceNow - 24 * 3600) < 30)
            #expect(try await agent(at: 24 * 3600 + 60).deferral(of: nil) == nil, "past the bound nothing defers")
            await supervisor.stopAll()
        }
    }
}
