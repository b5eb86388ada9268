import Crypto
public import Foundation
import Hummingbird
public import RampartModel
import RampartPKI
import X509

extension API {
    /// Device Authentication and Attestation. Both routes are open to devices without a
    /// token: the evidence itself is the credential.
    var attestationEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/attestation/challenge") { request, _ in
                let body = try await request.decodeBody(AttestationChallengeRequest.self)
                return try .json(try await challenge(for: body.deviceId), status: .created)
            },
            Endpoint(.post, "/v1/attestation/evidence") { request, _ in
                let evidence = try await request.decodeBody(AttestationEvidence.self)
                return try .json(try await attest(evidence), status: .created)
            },
        ]
    }

    /// Issues a single-use nonce for `device`, valid for 60 seconds.
    public func challenge(for device: DeviceID) async throws -> AttestationChallenge {
        let now = now()
        var generator = SystemRandomNumberGenerator()
        let nonce = Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let expiresAt = now.addingTimeInterval(Self.nonceLifetime)
        try await database.transaction { db in
            try await db.insertNonce(hash: Self.hash(nonce), device: device, expiresAt: expiresAt, now: now)
        }
        return AttestationChallenge(nonce: nonce.base64EncodedString(), expiresAt: expiresAt)
    }

    /// Checks evidence and, for a genuine claimed device running what it certified, issues
    /// its 24-hour client certificate. Throws a ``ServiceError`` naming the failed rule.
    public func attest(_ evidence: AttestationEvidence) async throws -> AttestationResult {
        let now = now()
        guard let payloadBytes = Data(base64Encoded: evidence.payload),
            let claimed = try? JSONDecoder.rampart.decode(AttestationPayload.self, from: payloadBytes),
            let nonce = Data(base64Encoded: claimed.nonce)
        else { throw AttestationError.malformed("payload is not base64 of an AttestationPayload with a base64 nonce") }
        // The nonce is spent by any evidence naming it, good or bad, so it cannot be retried.
        if let refusal = try await database.transaction({ db in
            try await db.consumeNonce(hash: Self.hash(nonce), device: claimed.deviceId, now: now)
        }) {
            throw refusal
        }
        let verified = try AttestationVerifier(manufacturers: manufacturerCAs).verify(evidence, now: now)
        let device = verified.payload.deviceId
        return try await database.transaction { db -> AttestationResult in
            guard let tenant = try await db.owner(of: device) else {
                throw AttestationError.refused(
                    "device_not_claimed", "device \(device) is not claimed by any tenant; claim it first")
            }
            let issuer = try await pki.issuingCA(for: tenant, db: db, now: now)
            let certificate = try issuer.issueDeviceCertificate(
                deviceID: device.hex, publicKey: verified.aliasKey, attestation: verified.tcbInfo, now: now)
            try await db.insertAttestation(
                device: device, tenant: tenant, time: now, softwareVersion: verified.payload.softwareVersion,
                measurementDigest: verified.measurementDigest, certificateSerial: certificate.serialHex,
                certificateExpiresAt: certificate.notValidAfter)
            return AttestationResult(
                deviceId: device, tenantId: tenant,
                certificateChain: [certificate.pemString, issuer.certificate.pemString, pki.intermediate.certificate.pemString],
                expiresAt: certificate.notValidAfter, softwareVersion: verified.payload.softwareVersion,
                measurementDigest: verified.measurementDigest)
        }
    }

    /// Routes for attested devices, over mutual TLS with their client certificate.
    var mutualTLSEndpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/device/whoami") { _, context in
                let (device, tenant) = try context.requireDevice()
                return try .json(DeviceWhoAmI(deviceId: device, tenantId: tenant))
            }
        ]
    }

    /// How long a challenge nonce may be answered.
    static let nonceLifetime: TimeInterval = 60

    static func hash(_ nonce: Data) -> String {
        SHA256.hash(data: nonce).hexString
    }
}
