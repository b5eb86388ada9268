import Crypto
import Foundation
@testable import RampartCLI
import RampartModel
import RampartDevice
import RampartTestSupport
import Testing

/// The `rampartd` executable as a device maker and a device run it: a manufacturer CA,
/// provisioning, identity, and one attestation against a live service.
@Suite struct RampartdBinaryTests {
    static let binary = CLIBinaryTests.binary.replacingOccurrences(of: "/rampart", with: "/rampartd")

    @Test func provisionIdentifyAndAttest() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try await Command.run(Self.binary, ["manufacturer-ca", "--out", "\(directory)/mfg"])
        #expect(made.status == 0, "\(made.output)")
        let state = ["--state-dir", "\(directory)/device"]
        let provisioned = try await Command.run(
            Self.binary,
            ["provision", "--manufacturer-cert", "\(directory)/mfg/ca.pem", "--manufacturer-key", "\(directory)/mfg/ca.key", "--json"]
                + state)
        #expect(provisioned.status == 0, "\(provisioned.output)")
        struct Record: Decodable { let deviceId: DeviceID }
        let device = try JSONDecoder().decode(Record.self, from: Data(provisioned.output.utf8)).deviceId
        let again = try await Command.run(
            Self.binary, ["provision", "--manufacturer-cert", "\(directory)/mfg/ca.pem", "--manufacturer-key", "\(directory)/mfg/ca.key"] + state)
        #expect(again.status != 0)
        #expect(again.output.contains("has an identity already"))

        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/mfg/ca.pem"], logger: quietLogger
        ) { local in
            let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
            let tenant = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                try await $0.createTenant(CreateTenantRequest(name: "Contoso"))
            }
            // The operator trusts this build of rampartd, as `rampart os publish --executable` does it.
            let config = "\(directory)/cli.json"
            let cli = CLIBinaryTests.binary
            let login = try await Command.run(
                cli, ["login", "--server", local.url, "--token", local.bootstrapToken, "--fingerprint", local.rootCAFingerprint, "--config", config],
                environment: ["RAMPART_TOKEN": ""])
            #expect(login.status == 0, "\(login.output)")
            let published = try await Command.run(
                cli, ["os", "publish", "--version", "0.1.0", "--executable", Self.binary, "--config", config],
                environment: ["RAMPART_TOKEN": ""])
            #expect(published.status == 0, "\(published.output)")
            let attest = ["attest", "--server", local.url, "--fingerprint", local.rootCAFingerprint, "--json"] + state
            // Not claimed yet: refused, and the refusal says so.
            let refused = try await Command.run(Self.binary, attest)
            #expect(refused.status != 0)
            #expect(refused.output.contains("device_not_claimed"))

            let record = try JSONDecoder.rampart.decode(
                ProvisioningRecord.self, from: try Data(contentsOf: URL(fileURLWithPath: "\(directory)/device/provisioning-record.json")))
            _ = try await APIClient.with(server: local.url, token: tenant.token.secret, trustRootPEM: root) {
                try await $0.claimDevice(ClaimDeviceRequest(record: record), tenant: tenant.tenant.id)
            }
            let attested = try await Command.run(Self.binary, attest)
            #expect(attested.status == 0, "\(attested.output)")
            let result = try JSONDecoder.rampart.decode(AttestationResult.self, from: Data(attested.output.utf8))
            #expect(result.deviceId == device)
            #expect(FileManager.default.fileExists(atPath: "\(directory)/device/certificate.pem"))

            let identity = try await Command.run(Self.binary, ["identity"] + state)
            #expect(identity.output.contains(device.hex))
            #expect(identity.output.contains("rampartd"))
            let shown = try await APIClient.with(server: local.url, token: tenant.token.secret, trustRootPEM: root) {
                try await $0.device(device, tenant: tenant.tenant.id)
            }
            #expect(shown.lastAttestation?.softwareVersion == result.softwareVersion)
        }
    }

    /// `rampartd run` on a TPM: its security monitor is a separate process holding the TPM;
    /// while the service is down it backs off with jitter, and it attests once it is back.
    @Test func runBacksOffWhileTheServiceIsDownThenAttests() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await SwtpmTestServer.with { tpm in
            #expect(try await Command.run(Self.binary, ["manufacturer-ca", "--out", "\(directory)/mfg"]).status == 0)
            let state = ["--state-dir", "\(directory)/device"]
            let provisioned = try await Command.run(
                Self.binary,
                ["provision", "--tpm", tpm.tcti, "--manufacturer-cert", "\(directory)/mfg/ca.pem",
                 "--manufacturer-key", "\(directory)/mfg/ca.key", "--json"] + state)
            #expect(provisioned.status == 0, "\(provisioned.output)")
            let record = try JSONDecoder.rampart.decode(ProvisioningRecord.self, from: Data(provisioned.output.utf8))
            #expect(record.securityProcessor == .tpm2)
            #expect(record.endorsementKeyCertificate != nil)

            // The service: trusts our factory's CA and the TPM maker's (swtpm's local CA).
            let port = try ChildProcess.freeLoopbackPort()
            let server = ["--data-dir", "\(directory)/service", "--port", "\(port)", "--bootstrap-token-file", "\(directory)/bootstrap",
                          "--manufacturer-ca", "\(directory)/mfg/ca.pem"]
                + SwtpmTestServer.localCACertificates.flatMap { ["--tpm-vendor-ca", $0] }
            var service = try Spawned(ServerBinaryTests.binary, server, log: "\(directory)/service1.log")
            let started = try await service.waitForOutput(containing: "root CA SHA-256")
            let fingerprint = String(try #require(started.firstMatch(of: /root CA SHA-256: +([0-9a-f]{64})/)?.1))
            let token = try String(contentsOfFile: "\(directory)/bootstrap", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let url = "https://127.0.0.1:\(port)"
            let root = try await LoginCommand.pinnedRoot(server: url, fingerprint: fingerprint)
            let executable = try Data(contentsOf: URL(fileURLWithPath: Self.binary))
            let tenant = try await APIClient.with(server: url, token: token, trustRootPEM: root) {
                _ = try await $0.publishRelease(PublishReleaseRequest(version: "0.1.0", measurement: SHA256.hash(data: executable).hexString))
                return try await $0.createTenant(CreateTenantRequest(name: "Contoso"))
            }
            _ = try await APIClient.with(server: url, token: tenant.token.secret, trustRootPEM: root) {
                try await $0.claimDevice(ClaimDeviceRequest(record: record), tenant: tenant.tenant.id)
            }
            #expect(try await service.terminate() == 0)

            // The device starts while the service is down.
            let device = try Spawned(
                Self.binary, ["run", "--server", url, "--fingerprint", fingerprint, "--initial-backoff", "0.2", "--max-backoff", "1", "--timeout", "2"] + state,
                log: "\(directory)/rampartd.log")
            let waiting: String
            do {
                waiting = try await device.waitForOutput(containing: "attempt 3", seconds: 30)
            } catch {
                Issue.record("rampartd said: \((try? String(contentsOfFile: device.log, encoding: .utf8)) ?? "nothing")")
                throw error
            }
            #expect(waiting.contains("security monitor"), "the monitor runs as its own process and says so")
            #expect(waiting.contains("device \(record.deviceId) (tpm2)"))
            let pauses = waiting.matches(of: /retrying in ([0-9.]+) s/).compactMap { Double($0.1) }
            #expect(pauses.count >= 3 && pauses.allSatisfy { $0 > 0 && $0 <= 1 }, "\(pauses)")

            service = try Spawned(ServerBinaryTests.binary, server, log: "\(directory)/service2.log")
            _ = try await service.waitForOutput(containing: "root CA SHA-256")
            let attested = try await device.waitForOutput(containing: "attested:", seconds: 30)
            #expect(attested.contains("renewing at"))
            let keyMode = try FileManager.default.attributesOfItem(atPath: "\(directory)/device/client-key.pem")[.posixPermissions] as? Int
            #expect(keyMode == 0o600)
            let chain = try String(contentsOfFile: "\(directory)/device/certificate.pem", encoding: .utf8)
            #expect(chain.components(separatedBy: "BEGIN CERTIFICATE").count == 4)
            let shown = try await APIClient.with(server: url, token: tenant.token.secret, trustRootPEM: root) {
                try await $0.device(record.deviceId, tenant: tenant.tenant.id)
            }
            #expect(shown.lastAttestation?.softwareVersion == "0.1.0")
            #expect(shown.securityProcessor == .tpm2)

            #expect(try await device.terminate() == 0)
            #expect(try String(contentsOfFile: device.log, encoding: .utf8).contains("stopping"))
            #expect(try await service.terminate() == 0)
        }
    }
}
