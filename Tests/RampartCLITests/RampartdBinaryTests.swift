import Foundation
@testable import RampartCLI
import RampartModel
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
            let attest = ["attest", "--server", local.url, "--fingerprint", local.rootCAFingerprint, "--json"] + state
            // Not claimed yet: refused, and the refusal says so.
            let refused = try await Command.run(Self.binary, attest)
            #expect(refused.status != 0)
            #expect(refused.output.contains("device_not_claimed"))

            _ = try await APIClient.with(server: local.url, token: tenant.token.secret, trustRootPEM: root) {
                try await $0.claimDevice(ClaimDeviceRequest(deviceId: device), tenant: tenant.tenant.id)
            }
            let attested = try await Command.run(Self.binary, attest)
            #expect(attested.status == 0, "\(attested.output)")
            let result = try JSONDecoder.rampart.decode(AttestationResult.self, from: Data(attested.output.utf8))
            #expect(result.deviceId == device)
            #expect(FileManager.default.fileExists(atPath: "\(directory)/device/certificate.pem"))

            let identity = try await Command.run(Self.binary, ["identity"] + state)
            #expect(identity.output.contains(device.hex))
            #expect(identity.output.contains("SHA-256 of /proc/self/exe"))
            let shown = try await APIClient.with(server: local.url, token: tenant.token.secret, trustRootPEM: root) {
                try await $0.device(device, tenant: tenant.tenant.id)
            }
            #expect(shown.lastAttestation?.softwareVersion == result.softwareVersion)
        }
    }
}
