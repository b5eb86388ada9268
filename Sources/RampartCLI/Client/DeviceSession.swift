public import Crypto
public import Foundation
public import RampartDevice
public import RampartModel

/// What a device does against the service: pin its root, ask for a challenge, have the
/// security monitor sign evidence for it, and keep the certificate with a fresh client key.
/// Used by `rampartd`, the demo and the benchmark.
public enum DeviceSession {
    /// An attested device's mutual-TLS credential: the 24-hour certificate chain and the
    /// key it certifies. The key is made here, for this attestation only; the identity
    /// keys stay in the security processor.
    public struct Credential: Sendable {
        public var result: AttestationResult
        public var clientKeyPEM: String
        public var clientKey: P256.Signing.PrivateKey { get throws { try P256.Signing.PrivateKey(pemRepresentation: clientKeyPEM) } }

        public init(result: AttestationResult, clientKeyPEM: String) {
            self.result = result
            self.clientKeyPEM = clientKeyPEM
        }
    }

    /// The service's root CA, fetched and checked against the pinned SHA-256 fingerprint.
    public static func pinnedRoot(server: String, fingerprint: String, timeout: Duration = .seconds(60)) async throws -> String {
        try await LoginCommand.pinnedRoot(server: server, fingerprint: fingerprint, timeout: timeout)
    }

    /// - Parameter timeout: the longest each request may take.
    public static func attest(
        server: String, fingerprint: String, monitor: any SecurityMonitorInterface, timeout: Duration = .seconds(60)
    ) async throws -> Credential {
        let rootPEM = try await LoginCommand.pinnedRoot(server: server, fingerprint: fingerprint, timeout: timeout)
        return try await attest(server: server, rootPEM: rootPEM, monitor: monitor, timeout: timeout)
    }

    /// - Parameter recovery: ask for a recovery certificate should the system software be
    ///   refused (one hour, update routes only: enough to install the fix).
    public static func attest(
        server: String, rootPEM: String, monitor: any SecurityMonitorInterface, timeout: Duration = .seconds(60),
        recovery: Bool = false
    ) async throws -> Credential {
        try await APIClient.with(server: server, token: nil, trustRootPEM: rootPEM, timeout: timeout) { client in
            try await attest(client, monitor: monitor, recovery: recovery)
        }
    }

    public static func attest(_ client: APIClient, monitor: any SecurityMonitorInterface, recovery: Bool = false) async throws -> Credential {
        let key = P256.Signing.PrivateKey()
        let identity = try await monitor.identity()
        let challenge = try await client.attestationChallenge(device: identity.deviceId)
        let evidence = try await monitor.evidence(nonce: challenge.nonce, clientKey: Array(key.publicKey.derRepresentation))
        let result = try await client.submitEvidence(evidence, recovery: recovery)
        return Credential(result: result, clientKeyPEM: key.pemRepresentation)
    }
}
