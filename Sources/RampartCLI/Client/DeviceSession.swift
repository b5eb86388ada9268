public import Crypto
public import Foundation
public import RampartDevice
public import RampartModel
public import X509

/// What a device does against the service: pin its root, ask for a challenge, answer with
/// evidence. Used by `rampartd attest` and by the demo.
public enum DeviceSession {
    public static func attest(
        server: String, fingerprint: String, dice: SoftwareDICE, deviceIDCertificate: Certificate,
        runtimeMeasurement: SHA256Digest, softwareVersion: String
    ) async throws -> AttestationResult {
        let rootPEM = try await LoginCommand.pinnedRoot(server: server, fingerprint: fingerprint)
        return try await APIClient.with(server: server, token: nil, trustRootPEM: rootPEM) { client in
            let challenge = try await client.attestationChallenge(device: dice.deviceID)
            return try await client.submitEvidence(
                try AttestationClient.evidence(
                    dice: dice, deviceIDCertificate: deviceIDCertificate, runtimeMeasurement: runtimeMeasurement,
                    softwareVersion: softwareVersion, securityVersion: 1, nonce: challenge.nonce, now: Date()))
        }
    }
}
