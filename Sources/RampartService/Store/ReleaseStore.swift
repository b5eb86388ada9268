import Foundation
import RampartModel

// System-software releases: the reference values attestation compares a device's
// measured runtime with.
extension SQLExecutor {
    /// Inserts the release; false when its version or measurement is published already.
    func insertRelease(_ release: SystemSoftwareRelease) async throws -> Bool {
        try await query(
            """
            INSERT INTO system_software_releases (version, measurement, feed, security_version, published_at, image_id)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING version
            """,
            .text(release.version), .text(release.measurement), .text(release.feed.rawValue),
            .int(Int64(release.securityVersion)), .of(release.publishedAt), release.imageId.map { .of($0) } ?? .null
        ).isEmpty == false
    }

    func releases() async throws -> [SystemSoftwareRelease] {
        try await query("SELECT * FROM system_software_releases ORDER BY published_at, version").map(SystemSoftwareRelease.init(row:))
    }

    func release(version: String) async throws -> SystemSoftwareRelease? {
        try await query("SELECT * FROM system_software_releases WHERE version = $1", .text(version)).first
            .map(SystemSoftwareRelease.init(row:))
    }

    /// Gives a reference-only release its signed package; false when it has one already.
    func attachPackage(_ image: ImageID, toRelease version: String) async throws -> Bool {
        try await query(
            "UPDATE system_software_releases SET image_id = $1 WHERE version = $2 AND image_id IS NULL RETURNING version",
            .of(image), .text(version)
        ).isEmpty == false
    }

    /// Revokes the release; false when there is none or it was revoked already.
    func revokeRelease(version: String, reason: String, at time: Date) async throws -> Bool {
        try await query(
            """
            UPDATE system_software_releases SET revoked_at = $1, revocation_reason = $2
            WHERE version = $3 AND revoked_at IS NULL RETURNING version
            """, .of(time), .text(reason), .text(version)
        ).isEmpty == false
    }
}

extension SystemSoftwareRelease {
    init(row: SQLRow) throws {
        self.init(
            version: try row.text("version"), measurement: try row.text("measurement"),
            feed: OSFeed(rawValue: try row.text("feed")) ?? .retail, securityVersion: Int(try row.int("security_version")),
            publishedAt: try row.date("published_at"), revokedAt: try row.optionalDate("revoked_at"),
            revocationReason: try row.optionalText("revocation_reason"),
            imageId: try row.optionalText("image_id").flatMap(ImageID.init))
    }
}
