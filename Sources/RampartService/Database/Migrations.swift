import Foundation

/// One step of the schema. Migrations are ordered, named, never edited once shipped, and
/// written in SQL, not derived from app types, so old steps keep meaning what they meant.
struct Migration: Sendable {
    let version: Int64
    let name: String
    /// Statements with `{BLOB}` and `{SERIAL}` standing for the engine's byte and
    /// auto-increment key types.
    let statements: [String]
    /// The one engine the statements are for; on the other the step is recorded and does nothing.
    var onlyOn: DatabaseEngine? = nil

    func sql(for engine: DatabaseEngine) -> [String] {
        if let onlyOn, onlyOn != engine { return [] }
        return statements.map { statement in
            statement
                .replacingOccurrences(of: "{BLOB}", with: engine == .postgres ? "BYTEA" : "BLOB")
                .replacingOccurrences(
                    of: "{SERIAL}",
                    with: engine == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT")
        }
    }
}

enum Schema {
    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "security-service-core",
            statements: [
                """
                CREATE TABLE service_state (
                    key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    name TEXT NOT NULL, role TEXT NOT NULL, created_at BIGINT NOT NULL,
                    UNIQUE (tenant_id, name))
                """,
                """
                CREATE TABLE tokens (
                    id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                    tenant_id TEXT REFERENCES tenants(id), user_id TEXT REFERENCES users(id),
                    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT)
                """,
                "CREATE INDEX tokens_by_user ON tokens (tenant_id, user_id)",
                """
                CREATE TABLE products (
                    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    name TEXT NOT NULL, description TEXT NOT NULL, created_at BIGINT NOT NULL,
                    UNIQUE (tenant_id, name))
                """,
                """
                CREATE TABLE device_groups (
                    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    product_id TEXT NOT NULL REFERENCES products(id), name TEXT NOT NULL,
                    description TEXT NOT NULL, os_feed TEXT NOT NULL, update_policy TEXT NOT NULL,
                    created_at BIGINT NOT NULL, UNIQUE (product_id, name))
                """,
                """
                CREATE TABLE devices (
                    id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES tenants(id),
                    device_group_id TEXT REFERENCES device_groups(id), claimed_at BIGINT)
                """,
                "CREATE INDEX devices_by_tenant ON devices (tenant_id, id)",
                "CREATE INDEX devices_by_group ON devices (device_group_id)",
                """
                CREATE TABLE audit_log (
                    id {SERIAL}, tenant_id TEXT, actor TEXT NOT NULL, action TEXT NOT NULL,
                    target TEXT NOT NULL, outcome TEXT NOT NULL, time BIGINT NOT NULL)
                """,
                "CREATE INDEX audit_by_tenant ON audit_log (tenant_id, id)",
                """
                CREATE TABLE certificate_authorities (
                    id TEXT PRIMARY KEY, kind TEXT NOT NULL, tenant_id TEXT REFERENCES tenants(id),
                    certificate_pem TEXT NOT NULL, sealed_key {BLOB},
                    not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,
                    activates_at BIGINT NOT NULL, created_at BIGINT NOT NULL)
                """,
                // Exactly one root and one intermediate, even when two nodes start at once.
                "CREATE UNIQUE INDEX service_ca_singleton ON certificate_authorities (kind) WHERE tenant_id IS NULL",
                "CREATE INDEX tenant_cas ON certificate_authorities (tenant_id, activates_at)",
            ]),
        Migration(
            version: 2, name: "device-attestation",
            statements: [
                """
                CREATE TABLE attestation_nonces (
                    nonce_hash TEXT PRIMARY KEY, device_id TEXT NOT NULL,
                    expires_at BIGINT NOT NULL, used_at BIGINT)
                """,
                "CREATE INDEX attestation_nonces_by_expiry ON attestation_nonces (expires_at)",
                """
                CREATE TABLE attestations (
                    id {SERIAL}, device_id TEXT NOT NULL, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    time BIGINT NOT NULL, software_version TEXT NOT NULL, measurement_digest TEXT NOT NULL,
                    certificate_serial TEXT NOT NULL, certificate_expires_at BIGINT NOT NULL)
                """,
                "CREATE INDEX attestations_by_device ON attestations (device_id, id)",
            ]),
        Migration(
            version: 3, name: "genuineness-and-reference-values",
            statements: [
                // The manufacturer-endorsed identity, checked at claim time and used to verify evidence.
                "ALTER TABLE devices ADD COLUMN security_processor TEXT NOT NULL DEFAULT 'software-dice'",
                "ALTER TABLE devices ADD COLUMN identity_certificate TEXT",
                "ALTER TABLE devices ADD COLUMN endorsement_key_certificate TEXT",
                """
                CREATE TABLE system_software_releases (
                    version TEXT PRIMARY KEY, measurement TEXT NOT NULL UNIQUE, feed TEXT NOT NULL,
                    security_version BIGINT NOT NULL, published_at BIGINT NOT NULL,
                    revoked_at BIGINT, revocation_reason TEXT)
                """,
            ]),
        Migration(
            version: 4, name: "signed-images",
            statements: [
                // Keys that sign content (image packages, later update metadata), one active per
                // owner and purpose; retired ones are kept for the record. NULLs never collide in a
                // unique index, hence a second one for the service's own keys.
                """
                CREATE TABLE signing_keys (
                    id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES tenants(id), purpose TEXT NOT NULL,
                    certificate_chain TEXT NOT NULL, sealed_key {BLOB}, not_after BIGINT NOT NULL,
                    created_at BIGINT NOT NULL, retired_at BIGINT)
                """,
                "CREATE UNIQUE INDEX signing_keys_active ON signing_keys (tenant_id, purpose) WHERE retired_at IS NULL",
                """
                CREATE UNIQUE INDEX signing_keys_active_service ON signing_keys (purpose)
                WHERE tenant_id IS NULL AND retired_at IS NULL
                """,
                // Signed packages, immutable once added. tenant_id is NULL for system software.
                """
                CREATE TABLE images (
                    id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES tenants(id), kind TEXT NOT NULL,
                    component_id TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
                    security_version BIGINT NOT NULL, sha256 TEXT NOT NULL, length BIGINT NOT NULL,
                    created_at BIGINT NOT NULL, created_by TEXT NOT NULL,
                    UNIQUE (tenant_id, component_id, version))
                """,
                "CREATE INDEX images_by_tenant ON images (tenant_id, created_at)",
                // Package bytes in 1 MiB chunks, in the database so nodes stay stateless.
                """
                CREATE TABLE blob_chunks (
                    sha256 TEXT NOT NULL, seq BIGINT NOT NULL, bytes {BLOB} NOT NULL, PRIMARY KEY (sha256, seq))
                """,
            ]),
        Migration(
            version: 5, name: "deliverable-system-software",
            statements: [
                // The signed package of a release, when the operator published one.
                "ALTER TABLE system_software_releases ADD COLUMN image_id TEXT REFERENCES images(id)",
            ]),
        Migration(
            version: 6, name: "deployments",
            statements: [
                // position orders a group's deployments (newest = highest) where created_at ties.
                """
                CREATE TABLE deployments (
                    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    device_group_id TEXT NOT NULL REFERENCES device_groups(id), position BIGINT NOT NULL,
                    created_at BIGINT NOT NULL, created_by TEXT NOT NULL, UNIQUE (device_group_id, position))
                """,
                """
                CREATE TABLE deployment_images (
                    deployment_id TEXT NOT NULL REFERENCES deployments(id), position BIGINT NOT NULL,
                    image_id TEXT NOT NULL REFERENCES images(id), PRIMARY KEY (deployment_id, position))
                """,
                "ALTER TABLE device_groups ADD COLUMN maintenance_start_minute BIGINT",
                "ALTER TABLE device_groups ADD COLUMN maintenance_duration_minutes BIGINT",
                "ALTER TABLE device_groups ADD COLUMN update_requested_at BIGINT",
                // The newest report of each device, and every contact; the history beside it.
                """
                CREATE TABLE device_update_status (
                    device_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), sequence BIGINT,
                    deployment_id TEXT, state TEXT, reason TEXT, detail TEXT, running_json TEXT,
                    deferred_until BIGINT, reported_at BIGINT, last_contact_at BIGINT)
                """,
                """
                CREATE TABLE device_update_events (
                    id {SERIAL}, device_id TEXT NOT NULL, tenant_id TEXT NOT NULL, sequence BIGINT NOT NULL,
                    deployment_id TEXT, state TEXT NOT NULL, reason TEXT, detail TEXT, reported_at BIGINT NOT NULL)
                """,
                "CREATE INDEX device_update_events_by_device ON device_update_events (device_id, id)",
            ]),
        Migration(
            version: 7, name: "update-repositories",
            statements: [
                // One TUF root per tenant (the same bytes for all its groups), and per group the
                // other three roles. Files are kept as served; versions only move on change.
                """
                CREATE TABLE tuf_roots (
                    tenant_id TEXT NOT NULL REFERENCES tenants(id), version BIGINT NOT NULL, bytes {BLOB} NOT NULL,
                    expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (tenant_id, version))
                """,
                """
                CREATE TABLE tuf_metadata (
                    device_group_id TEXT NOT NULL, role TEXT NOT NULL, version BIGINT NOT NULL, bytes {BLOB} NOT NULL,
                    expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (device_group_id, role, version))
                """,
                // Which blobs a group's devices may fetch as targets: listed now or recently.
                """
                CREATE TABLE tuf_targets (
                    device_group_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, last_listed_at BIGINT NOT NULL,
                    PRIMARY KEY (device_group_id, path, sha256))
                """,
            ]),
        Migration(
            version: 8, name: "update-now-answered",
            statements: [
                // Which update-now request a device's last report answered (timestamps are whole
                // seconds, so "reported after the request" cannot tell the same second apart).
                "ALTER TABLE device_update_status ADD COLUMN update_request_seen BIGINT",
            ]),
        Migration(
            version: 9, name: "recovery-certificates",
            statements: [
                // 1 for a recovery certificate: issued to refused system software, for the update routes only.
                "ALTER TABLE attestations ADD COLUMN recovery BIGINT NOT NULL DEFAULT 0",
            ]),
        Migration(
            version: 10, name: "failure-reports",
            statements: [
                """
                CREATE TABLE failure_reports (
                    report_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, device_id TEXT NOT NULL, device_group_id TEXT,
                    bucket_id TEXT NOT NULL, time BIGINT NOT NULL, received_at BIGINT NOT NULL, event_type TEXT NOT NULL,
                    event_class TEXT NOT NULL, category TEXT NOT NULL, component_id TEXT, image_id TEXT,
                    system_software_version TEXT NOT NULL, frames TEXT NOT NULL, details TEXT NOT NULL, count BIGINT NOT NULL,
                    reason TEXT NOT NULL, top_frames TEXT NOT NULL)
                """,
                "CREATE INDEX failure_reports_bucket ON failure_reports (tenant_id, bucket_id, time)",
                "CREATE INDEX failure_reports_time ON failure_reports (time)",
            ]),
        Migration(
            version: 11, name: "staged-rollouts",
            statements: [
                // A staged deployment: its canary devices (JSON array of device IDs) and its state.
                "ALTER TABLE deployments ADD COLUMN canary_devices TEXT",
                "ALTER TABLE deployments ADD COLUMN previous_deployment_id TEXT",
                "ALTER TABLE deployments ADD COLUMN soak_until BIGINT",
                "ALTER TABLE deployments ADD COLUMN halt_threshold BIGINT",
                "ALTER TABLE deployments ADD COLUMN paused_at BIGINT",
                "ALTER TABLE deployments ADD COLUMN pause_reason TEXT",
                "ALTER TABLE deployments ADD COLUMN paused_by TEXT",
                "ALTER TABLE deployments ADD COLUMN resumed_at BIGINT",
            ]),
        Migration(
            version: 12, name: "stateless-nonces",
            statements: [
                // Challenges carry their own MAC (AttestationNonces); only spent ones are
                // stored, and only on PostgreSQL: an SQLite service keeps them in memory.
                "DROP TABLE attestation_nonces",
                "CREATE TABLE spent_nonces (nonce_tag TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
                "CREATE INDEX spent_nonces_by_expiry ON spent_nonces (expires_at)",
            ]),
        Migration(
            version: 13, name: "attestations-by-rowid",
            statements: [
                // AUTOINCREMENT made every attestation's commit write one more page (the
                // sqlite_sequence row), about a third of it. Attestations are never deleted,
                // so a plain rowid key gives the same ever-growing ids.
                """
                CREATE TABLE attestations_by_rowid (
                    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    time BIGINT NOT NULL, software_version TEXT NOT NULL, measurement_digest TEXT NOT NULL,
                    certificate_serial TEXT NOT NULL, certificate_expires_at BIGINT NOT NULL, recovery BIGINT NOT NULL DEFAULT 0)
                """,
                """
                INSERT INTO attestations_by_rowid (id, device_id, tenant_id, time, software_version, measurement_digest,
                    certificate_serial, certificate_expires_at, recovery)
                SELECT id, device_id, tenant_id, time, software_version, measurement_digest, certificate_serial,
                    certificate_expires_at, recovery FROM attestations
                """,
                "DROP TABLE attestations",
                "ALTER TABLE attestations_by_rowid RENAME TO attestations",
                "CREATE INDEX attestations_by_device ON attestations (device_id, id)",
            ], onlyOn: .sqlite),
    ]

    /// Applies every migration not yet applied, each in its own transaction, in order.
    /// On PostgreSQL an advisory lock keeps two nodes starting together from racing.
    static func migrate(_ database: any Database, now: Date = Date()) async throws -> [Migration] {
        try await database.transaction { db in
            try await db.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            return ()
        }
        var applied: [Migration] = []
        for migration in migrations {
            let didApply = try await database.transaction { db in
                if database.engine == .postgres {
                    try await db.query("SELECT pg_advisory_xact_lock(727274)")
                }
                let existing = try await db.query(
                    "SELECT version FROM schema_migrations WHERE version = $1", .int(migration.version))
                guard existing.isEmpty else { return false }
                for statement in migration.sql(for: database.engine) {
                    try await db.query(statement, [])
                }
                try await db.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    .int(migration.version), .text(migration.name), .of(now))
                return true
            }
            if didApply { applied.append(migration) }
        }
        return applied
    }
}
