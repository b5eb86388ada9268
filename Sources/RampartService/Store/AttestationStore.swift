import Foundation
import RampartModel

// Spent attestation nonces and the record of successful attestations.
extension SQLExecutor {
    /// Records the nonce as spent, in one statement so two submissions cannot both spend
    /// it; false when it was spent already.
    func spendNonce(_ nonce: AttestationNonces.Fresh) async throws -> Bool {
        try await !query(
            "INSERT INTO spent_nonces (nonce_tag, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING nonce_tag",
            .text(nonce.tag), .of(nonce.expiresAt)
        ).isEmpty
    }

    /// Forgets spent nonces that expired before `date`: they are refused as expired anyway.
    func sweepSpentNonces(expiredBefore date: Date) async throws {
        try await query("DELETE FROM spent_nonces WHERE expires_at < $1", .of(date))
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
