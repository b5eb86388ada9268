import Foundation
import RampartModel

// Attestation nonces (single use, 60 s) and the record of successful attestations.
extension SQLExecutor {
    /// Expired nonces are kept this long after they expire, to answer `nonce_expired`
    /// rather than `nonce_unknown`, then purged: what anyone can make the service store by
    /// asking for challenges stays bounded by a few minutes of them.
    static var expiredNonceRetention: TimeInterval { 300 }

    func insertNonce(hash: String, device: DeviceID, expiresAt: Date, now: Date) async throws {
        try await query(
            "DELETE FROM attestation_nonces WHERE expires_at < $1", .of(now.addingTimeInterval(-Self.expiredNonceRetention)))
        try await query(
            "INSERT INTO attestation_nonces (nonce_hash, device_id, expires_at, used_at) VALUES ($1, $2, $3, NULL)",
            .text(hash), .of(device), .of(expiresAt))
    }

    /// Why the nonce cannot be used, or `nil` when it is fresh — without spending it. A
    /// cheap look before the signatures are checked; ``consumeNonce(hash:device:now:)``
    /// still decides atomically.
    func nonceRefusal(hash: String, device: DeviceID, now: Date) async throws -> ServiceError? {
        let rows = try await query(
            "SELECT used_at, expires_at FROM attestation_nonces WHERE nonce_hash = $1 AND device_id = $2", .text(hash),
            .of(device))
        guard let row = rows.first else {
            return AttestationError.refused("nonce_unknown", "this nonce was not issued to this device; ask for a new challenge")
        }
        if try row.optionalDate("used_at") != nil {
            return AttestationError.refused("nonce_replayed", "this nonce was used already; ask for a new challenge")
        }
        if try row.date("expires_at") <= now {
            return AttestationError.refused("nonce_expired", "this nonce expired (60 s); ask for a new challenge")
        }
        return nil
    }

    /// Marks the nonce used in one statement, so two submissions cannot both consume it.
    /// Returns why it could not be used, or `nil` when it was fresh.
    func consumeNonce(hash: String, device: DeviceID, now: Date) async throws -> ServiceError? {
        let consumed = try await query(
            """
            UPDATE attestation_nonces SET used_at = $1
            WHERE nonce_hash = $2 AND device_id = $3 AND used_at IS NULL AND expires_at > $1
            RETURNING nonce_hash
            """, .of(now), .text(hash), .of(device))
        guard consumed.isEmpty else { return nil }
        // Not spent by this statement: say why (a fresh-looking row means another spent it first).
        return try await nonceRefusal(hash: hash, device: device, now: now)
            ?? AttestationError.refused("nonce_replayed", "this nonce was used already; ask for a new challenge")
    }

    func insertAttestation(
        device: DeviceID, tenant: TenantID, time: Date, softwareVersion: String, measurementDigest: String,
        certificateSerial: String, certificateExpiresAt: Date, recovery: Bool = false
    ) async throws {
        try await query(
            """
            INSERT INTO attestations (device_id, tenant_id, time, software_version, measurement_digest, certificate_serial,
                certificate_expires_at, recovery)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            .of(device), .of(tenant), .of(time), .text(softwareVersion), .text(measurementDigest),
            .text(certificateSerial), .of(certificateExpiresAt), .int(recovery ? 1 : 0))
    }

    /// What the service issued a device certificate for: whether the release is revoked now,
    /// and whether it is a recovery certificate; nil when this service has no record of
    /// issuing that certificate to that device.
    func issuedCertificate(serial: String, device: DeviceID) async throws -> (revoked: Bool, recovery: Bool)? {
        let rows = try await query(
            """
            SELECT r.revoked_at, a.recovery FROM attestations a LEFT JOIN system_software_releases r ON r.version = a.software_version
            WHERE a.device_id = $1 AND a.certificate_serial = $2
            """, .of(device), .text(serial))
        guard let row = rows.first else { return nil }
        return (try row.optionalDate("revoked_at") != nil, try row.int("recovery") != 0)
    }

    func lastAttestation(device: DeviceID, tenant: TenantID) async throws -> AttestationSummary? {
        try await query(
            "SELECT * FROM attestations WHERE device_id = $1 AND tenant_id = $2 AND recovery = 0 ORDER BY id DESC LIMIT 1", .of(device),
            .of(tenant)
        ).first.map { row in
            AttestationSummary(
                time: try row.date("time"), result: "trusted", softwareVersion: try row.text("software_version"),
                measurementDigest: try row.text("measurement_digest"),
                certificateExpiresAt: try row.date("certificate_expires_at"))
        }
    }
}
