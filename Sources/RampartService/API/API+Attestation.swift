import Crypto
public import Foundation
import SwiftASN1
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
                let recovery = try request.uri.queryParameters.get("purpose").map { purpose in
                    guard purpose == "recovery" else { throw ServiceError.invalidField("purpose", "must be recovery, or absent") }
                    return true
                } ?? false
                let evidence = try await request.decodeBody(AttestationEvidence.self)
                return try .json(try await attest(evidence, recovery: recovery), status: .created)
            },
        ]
    }

    /// Issues a single-use nonce for `device`, valid for 60 seconds (``AttestationNonces``:
    /// nothing is stored until it is spent).
    public func challenge(for device: DeviceID) async throws -> AttestationChallenge {
        let now = now()
        // Only for claimed devices: nobody learns anything from nonces for made-up IDs.
        guard try await database.read({ db in try await db.owner(of: device) }) != nil else {
            throw AttestationError.refused("device_not_claimed", "device \(device) is not claimed by any tenant; claim it first")
        }
        let (nonce, expiresAt) = nonces.issue(for: device, now: now)
        return AttestationChallenge(nonce: nonce.base64EncodedString(), expiresAt: expiresAt)
    }

    /// Checks evidence and, for a genuine claimed device running what it certified, issues
    /// its 24-hour client certificate. Throws a ``ServiceError`` naming the failed rule.
    ///
    /// With `recovery`, a genuine device whose only fault is its system software (unknown,
    /// revoked or below its counter — `UpdateRequired.codes`) gets a **recovery** certificate
    /// instead of the refusal: one hour, good only for the update routes, so it can fetch the
    /// release that fixes it. Everything else is refused as without it.
    public func attest(_ evidence: AttestationEvidence, recovery: Bool = false) async throws -> AttestationResult {
        let now = now()
        guard let payloadBytes = Data(base64Encoded: evidence.payload),
            let claimed = try? AttestationPayload.decode(json: payloadBytes),
            let nonce = Data(base64Encoded: claimed.nonce)
        else { throw AttestationError.malformed("payload is not base64 of an AttestationPayload with a base64 nonce") }
        // A nonce this service did not issue to this device, or an expired one, is the
        // refusal the device hears first.
        let fresh = try nonces.check(nonce, device: claimed.deviceId, now: now)
        try nonces.spendUpfront(fresh, now: now)
        do {
            return try await verifyAndIssue(
                evidence, payloadBytes: payloadBytes, claimed: claimed, nonce: fresh, recovery: recovery, now: now)
        } catch let refusal as ServiceError where !Self.nonceRefusals.contains(refusal.code) {
            // The nonce is spent by any evidence naming it, good or bad, so it cannot be
            // retried; and one spent before is the refusal the device hears.
            guard try await nonces.spendAfterRefusal(fresh, database: database, now: now) else { throw AttestationNonces.replayed }
            throw refusal
        }
    }

    /// Why the device's system software is refused, if it is: not a trusted release,
    /// below the device's own counter, or revoked (the codes of `UpdateRequired`).
    static func softwareRefusal(_ release: SystemSoftwareRelease?, payload: AttestationPayload, runtime: [UInt8]) -> ServiceError? {
        guard let release else {
            return AttestationError.refused(
                "software_unknown",
                "system software \(payload.softwareVersion) (SHA-256 \(runtime.hexString.prefix(16))…) is not a release this service trusts; the device must update")
        }
        // Anti-rollback: never below the newest security version the device has installed.
        if let floor = payload.counters[MonotonicCounter.systemSoftware.rawValue], UInt64(release.securityVersion) < floor {
            return AttestationError.refused(
                "software_rolled_back",
                "system software \(release.version) has security version \(release.securityVersion), below the \(floor) this device has installed; the device must update")
        }
        if release.revokedAt != nil {
            return AttestationError.refused(
                "software_revoked",
                "system software \(release.version) was revoked (\(release.revocationReason ?? "no reason given")); the device must update")
        }
        return nil
    }

    /// How long a recovery certificate lasts: enough to download and install a release.
    static let recoveryLifetime: TimeInterval = 3600

    /// The routes a recovery certificate opens: the update check, the repository, update
    /// reports, failure reports.
    static func recoveryAllows(_ path: String) -> Bool {
        path == "/v1/device/update-check" || path == "/v1/device/update-state" || path.hasPrefix("/v1/device/tuf/")
            || path == "/v1/device/reports"
    }

    /// The refusals about the nonce itself.
    static let nonceRefusals: Set<String> = ["nonce_unknown", "nonce_replayed", "nonce_expired"]

    /// In one transaction: spends the nonce, reads the claim with the owner's issuing CA and
    /// the runtime's release (one statement), verifies the evidence against the registered
    /// identity, checks the reference values and issues the certificate from that CA.
    ///
    /// The verification runs inside the transaction, so the claim it was checked against is
    /// the one the certificate is issued under (held, on PostgreSQL, until the commit)
    /// without reading the owner a second time; the price is that the SQLite connection
    /// stays locked for the ≈ 50 µs of the signature check (BENCHMARKS.md weighs it).
    private func verifyAndIssue(
        _ evidence: AttestationEvidence, payloadBytes: Data, claimed: AttestationPayload, nonce: AttestationNonces.Fresh,
        recovery: Bool, now: Date
    ) async throws -> AttestationResult {
        try await database.transaction { db -> AttestationResult in
            guard try await nonces.spend(nonce, db: db, now: now) else { throw AttestationNonces.replayed }
            // The runtime the payload claims (the verifier holds it to what was certified or
            // quoted), so its release is read with the claim, before the verification.
            let claimedRuntime = claimed.measurements.first.flatMap { [UInt8](hexString: $0.sha256) }?.hexString ?? ""
            guard
                let claim = try await db.claimForIssuing(
                    of: claimed.deviceId, runtime: claimedRuntime, now: now, holdingClaim: database.engine == .postgres)
            else {
                throw AttestationError.refused(
                    "device_not_claimed", "device \(claimed.deviceId) is not claimed by any tenant; claim it first")
            }
            let verified = try AttestationVerifier(
                identityPEM: claim.certificatePEM, processor: claim.processor, cache: attestationCache
            ).verify(evidence, payloadBytes: payloadBytes, payload: claimed, now: now)
            let payload = verified.payload
            let device = payload.deviceId
            // Reference values: the measured runtime must be a release the service trusts.
            let release = claim.release.flatMap {
                $0.measurement == verified.runtime.hexString && $0.version == payload.softwareVersion ? $0 : nil
            }
            let softwareRefusal = Self.softwareRefusal(release, payload: payload, runtime: verified.runtime)
            if let softwareRefusal, !recovery { throw softwareRefusal }
            let issuer = try await pki.issuer(id: claim.issuingCA, tenant: claim.tenant, db: db)
            let result = DiceTcbInfo(
                vendor: "Rampart", model: "rampartd", version: payload.softwareVersion,
                securityVersion: release?.securityVersion ?? 0, layer: 1,
                fwids: [verified.runtime, [UInt8](hexString: verified.measurementDigest) ?? []])
            let certificate = try issuer.authority.issueDeviceCertificate(
                deviceID: device.hex, publicKey: verified.clientKey, attestation: result, now: now,
                lifetime: softwareRefusal == nil ? nil : Self.recoveryLifetime)
            try await db.insertAttestation(
                device: device, tenant: claim.tenant, time: now, softwareVersion: payload.softwareVersion,
                measurementDigest: verified.measurementDigest, certificateSerial: certificate.serialHex,
                certificateExpiresAt: certificate.notValidAfter, recovery: softwareRefusal != nil)
            return AttestationResult(
                deviceId: device, tenantId: claim.tenant,
                certificateChain: [certificate.pemString] + issuer.chainPEM,
                expiresAt: certificate.notValidAfter, softwareVersion: payload.softwareVersion,
                measurementDigest: verified.measurementDigest, recovery: softwareRefusal.map { "\($0.code): \($0.message)" })
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

}
