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

/// System-software updates on real binaries: `rampartd run` installs a new release of itself
/// into the inactive slot, restarts into it (exec), is attested as the new release and
/// commits; a release that dies at start, one the service refuses to attest and one whose
/// executable was tampered with on disk are each rolled back to the release that ran before.
@Suite(.serialized) struct SystemSoftwareTests {
    /// A new "release" of rampartd: this build, stripped of its debug sections (a smaller
    /// download) and with a marker appended — a different, runnable executable.
    static func release(_ version: String, securityVersion: Int, in directory: String) async throws -> Data {
        let path = "\(directory)/rampartd-\(version)"
        try FileManager.default.copyItem(atPath: RampartdBinaryTests.binary, toPath: path)
        let stripped = try await Command.run("/usr/bin/strip", ["--strip-all", path])
        #expect(stripped.status == 0, "\(stripped.output)")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("rampart release \(version)".utf8))
        try handle.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ImagePackage.systemSoftware(
            executable: try Data(contentsOf: URL(fileURLWithPath: path)), version: version, securityVersion: securityVersion
        ).zipped()
    }

    struct Device {
        let env: PowerLossTests.Environment
        var slots: SlotStore { SlotStore(directory: "\(env.directory)/device") }

        func serviceOperator<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
            try await APIClient.with(server: env.local.url, token: env.local.bootstrapToken, trustRootPEM: env.root, body)
        }

        func publish(_ package: Data) async throws {
            _ = try await self.serviceOperator { try await $0.publishReleasePackage(package, feed: .retail) }
        }

        func start(_ log: String, environment: [String: String] = [:]) throws -> Spawned {
            try Spawned(
                RampartdBinaryTests.binary,
                ["run", "--server", env.local.url, "--fingerprint", env.local.rootCAFingerprint, "--contact-interval", "0.5",
                 "--update-interval", "3600", "--timeout", "30", "--health-window", "1"] + env.state,
                log: "\(env.directory)/\(log).log", environment: environment)
        }

        func update() async throws -> (status: Int32, output: String) {
            try await Command.run(
                RampartdBinaryTests.binary,
                ["update", "--server", env.local.url, "--fingerprint", env.local.rootCAFingerprint, "--timeout", "30", "--health-window", "1"]
                    + env.state)
        }

        func status() async throws -> DeploymentStatusDocument {
            try await env.admin { try await $0.deploymentStatus(device: env.record.deviceId, tenant: env.tenant) }
        }

        /// Polls the deployment status until `done` holds (60 s at most) and returns it.
        func waitForStatus(
            _ what: String, of run: Spawned, _ done: (DeploymentStatusDocument) -> Bool
        ) async throws -> DeploymentStatusDocument {
            var status = try await status()
            for _ in 0..<150 where !done(status) {
                try await Task.sleep(for: .milliseconds(200))
                status = try await self.status()
            }
            let log = done(status) ? "" : (try? String(contentsOfFile: run.log, encoding: .utf8)) ?? ""
            #expect(done(status), "\(what): \(status)\n\(log.suffix(3000))")
            return status
        }

        /// The system software the active slot would boot, verified as the boot loader does.
        func activeRelease() async throws -> String? {
            guard let active = try slots.boot().active, let system = slots.systemImage(in: active) else { return nil }
            let root = try Certificate(pemEncoded: env.root)
            #expect(await slots.verifiedExecutable(in: active, root: root, now: Date()) != nil, "slot \(active) does not verify")
            return system.version
        }
    }

    @Test func aNewReleaseBootsOnTrialAndBadOnesRollBack() async throws {
        try await PowerLossTests.withEnvironment { env in
            let device = Device(env: env)
            try await env.deploy(env.images[0])
            try await device.publish(try await Self.release("0.2.0", securityVersion: 2, in: env.directory))

            // Installed beside the factory runtime, booted on trial, attested as 0.2.0, committed.
            var run = try device.start("run-0.2.0")
            var status = try await device.waitForStatus("0.2.0 confirmed", of: run) {
                $0.state == .confirmed && $0.inSync && $0.runs?.systemSoftware?.version == "0.2.0"
            }
            #expect(status.runs?.apps.map(\.imageId) == [env.images[0].id])
            #expect(status.runs?.systemSoftware?.imageId != nil)
            var log = try await run.waitForOutput(containing: "update check: installed")
            #expect(log.contains("update check: restartRequired"), "\(log)")
            #expect(log.contains("booting system software 0.2.0 on trial from slot"), "\(log)")
            #expect(log.contains("software 0.2.0, "), "the monitor labels the launch with the slot's release: \(log)")
            #expect(try await run.terminate() == 0)
            #expect(try await device.activeRelease() == "0.2.0")

            // A release that dies at start (it is /bin/false): the start on trial exits; the
            // next start (the init system's restart) finds the attempt spent and rolls back.
            let dead = try ImagePackage.systemSoftware(
                executable: try Data(contentsOf: URL(fileURLWithPath: "/bin/false")), version: "0.3.0", securityVersion: 3)
            try await device.publish(try dead.zipped())
            run = try device.start("run-0.3.0")
            var exited: Int32?
            for _ in 0..<600 where exited == nil {
                var raw: Int32 = 0
                if waitpid(run.pid, &raw, WNOHANG) == run.pid { exited = (raw >> 8) & 0xff }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(exited == 1, "the trial start of /bin/false ends with its status")
            log = try String(contentsOfFile: run.log, encoding: .utf8)
            #expect(log.contains("booting system software 0.3.0 on trial"), "\(log)")
            run = try device.start("run-after-0.3.0")
            status = try await device.waitForStatus("0.3.0 rolled back", of: run) { $0.state == .rolledBack }
            #expect(status.runs?.systemSoftware?.version == "0.2.0" && status.reason == "rolled_back", "\(status)")
            #expect(status.detail?.contains("interrupted") == true, "\(status)")
            log = try await run.waitForOutput(containing: "update check: rolledBack")
            #expect(log.contains("rolled back: system software 0.3.0 did not reach its health verdict"), "\(log)")
            #expect(try await run.terminate() == 0)
            #expect(try await device.activeRelease() == "0.2.0")

            // A release the service refuses to attest (revoked after the device installed it):
            // the attestation of the start on trial fails its health check.
            _ = try await device.serviceOperator { try await $0.revokeRelease(version: "0.3.0", reason: "dies at start") }
            try await device.publish(try await Self.release("0.4.0", securityVersion: 4, in: env.directory))
            let armed = try await device.update()
            #expect(armed.status == 0 && armed.output.contains("boots, and is health-checked, at the next"), "\(armed.output)")
            _ = try await device.serviceOperator { try await $0.revokeRelease(version: "0.4.0", reason: "found wanting") }
            run = try device.start("run-0.4.0")
            log = try await run.waitForOutput(containing: "update check: upToDate")
            #expect(log.contains("booting system software 0.4.0 on trial"), "\(log)")
            #expect(log.contains("the service refused the system software on trial (software_revoked): rolling back"), "\(log)")
            #expect(try device.slots.boot().lastRollback?.reason == "attestation_refused")
            status = try await device.waitForStatus("back on 0.2.0", of: run) { $0.inSync && $0.runs?.systemSoftware?.version == "0.2.0" }
            #expect(try await run.terminate() == 0)

            // An executable swapped on disk between install and boot: the boot loader refuses it.
            try await device.publish(try await Self.release("0.5.0", securityVersion: 5, in: env.directory))
            #expect(try await device.update().status == 0)
            let trial = try #require(try device.slots.boot().trial)
            let executable = device.slots.executablePath(trial.slot)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: executable))
            bytes[bytes.count - 1] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: executable))
            run = try device.start("run-0.5.0")
            status = try await device.waitForStatus("0.5.0 refused", of: run) { $0.state == .rolledBack }
            #expect(status.detail?.contains("does not verify") == true && status.runs?.systemSoftware?.version == "0.2.0", "\(status)")
            log = try String(contentsOfFile: run.log, encoding: .utf8)
            #expect(!log.contains("booting system software 0.5.0"), "\(log)")
            #expect(try await run.terminate() == 0)
            #expect(try await device.activeRelease() == "0.2.0")
        }
    }

    /// A device whose release was revoked cannot attest, yet it must fetch the fix: it
    /// installs the new release with a recovery certificate and is attested again.
    @Test func aDeviceOnARevokedReleaseInstallsTheFix() async throws {
        try await PowerLossTests.withEnvironment { env in
            let device = Device(env: env)
            try await env.deploy(env.images[0])
            _ = try await device.serviceOperator { try await $0.revokeRelease(version: "0.1.0", reason: "CVE-2026-1234") }
            try await device.publish(try await Self.release("0.2.0", securityVersion: 2, in: env.directory))
            let run = try device.start("recovery")
            let status = try await device.waitForStatus("fixed", of: run) {
                $0.state == .confirmed && $0.inSync && $0.runs?.systemSoftware?.version == "0.2.0"
            }
            #expect(status.runs?.apps.map(\.imageId) == [env.images[0].id])
            let log = try await run.waitForOutput(containing: "update check: installed")
            #expect(log.contains("refused (software_revoked); checking for updates with a recovery certificate"), "\(log)")
            #expect(try await run.terminate() == 0)
        }
    }

    /// A power loss (SIGKILL) at each step of a system-software install and its boot: the
    /// next start runs a complete, verified release — the old or the new — and the service
    /// hears the truth.
    @Test func aKillAtAnyStepOfASystemInstallLeavesAVerifiedRelease() async throws {
        try await PowerLossTests.withEnvironment { env in
            let device = Device(env: env)
            try await env.deploy(env.images[0])
            // The steps only a system install has, and the two sides of its commit (the app
            // install's every step is rehearsed in PowerLossTests).
            let checkpoints: [UpdateCheckpoint] = [
                .executableWritten, .trialArmed, .systemTrialSelected, .trialBooted, .healthPassedBeforeCommit, .committed,
            ]
            var releases = ["0.1.0"]
            for (index, checkpoint) in checkpoints.enumerated() {
                let version = "0.\(index + 2).0"
                try await device.publish(try await Self.release(version, securityVersion: index + 2, in: env.directory))
                let killed = try device.start("kill-\(checkpoint)", environment: ["RAMPARTD_KILL_AT": checkpoint.rawValue])
                let status = try await Command.wait(for: killed.pid)
                let output = (try? String(contentsOfFile: killed.log, encoding: .utf8)) ?? ""
                #expect(status == 137, "\(checkpoint): \(output)")
                let afterKill = try await device.activeRelease() ?? "0.1.0"
                #expect(afterKill == releases.last || afterKill == version, "\(checkpoint): the active slot has \(afterKill)")

                let run = try device.start("after-\(checkpoint)")
                let settled = try await device.waitForStatus("\(checkpoint) settled", of: run) {
                    [.confirmed, .rolledBack].contains($0.state) && [releases.last, version].contains($0.runs?.systemSoftware?.version)
                }
                #expect(try await run.terminate() == 0)
                let running = try #require(settled.runs?.systemSoftware?.version)
                let active = try await device.activeRelease() ?? "0.1.0"
                #expect(active == running, "\(checkpoint)")
                #expect(try device.slots.boot().trial == nil, "\(checkpoint): no trial left armed")
                if running == version {
                    #expect(settled.state == .confirmed && settled.inSync, "\(checkpoint): \(settled)")
                    releases.append(version)
                } else {
                    #expect(settled.state == .rolledBack && settled.detail?.contains("interrupted") == true, "\(checkpoint): \(settled)")
                    // The rolled-back release stays refused; retire it so the next one is what the feed offers.
                    _ = try await device.serviceOperator { try await $0.revokeRelease(version: version, reason: "interrupted in a test") }
                }
            }
        }
    }
}
