import Foundation
import Logging
@testable import RampartCLI
import RampartDevice
import RampartModel
import RampartTestSupport
import Testing

@Suite struct DemoTests {
    /// The README's main command, run in-process: every step must really happen.
    @Test func demoWalksTheWholeLoop() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var narrator = Narrator(quiet: true)
        let summary = try await runDemo(in: directory, narrator: &narrator)
        // scripts/install-deps.sh installs swtpm, so the demo's device has a TPM 2.0 here.
        #expect(summary.securityProcessor == (Swtpm.isInstalled ? .tpm2 : .softwareDICE))
        #expect(summary.chainVerifiedByOpenSSL)
        #expect(summary.deviceCertificateVerifiedByOpenSSL)
        #expect(FileManager.default.fileExists(atPath: summary.deviceCertificateFile))
        #expect(summary.refusals == ["device_claimed_elsewhere", "tenant_not_found", "forbidden", "device_not_genuine", "software_revoked"])
        #expect(summary.auditEntries >= 7)
        #expect(summary.rollbackReason == "rolled_back")
        #expect(summary.errorBuckets == ["application/crash", "application/update-rolled-back"])
        #expect(summary.telemetryLogLine.hasPrefix("200 \"CN=\(summary.deviceId.hex),O=Rampart device\" SUCCESS \"POST /v1/telemetry"), "\(summary.telemetryLogLine)")
        #expect(FileManager.default.fileExists(atPath: summary.chainFile))
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/config.json")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}

let quietLogger: Logger = {
    var logger = Logger(label: "rampart-cli-test")
    logger.logLevel = .critical
    return logger
}()
