import Foundation
import RampartModel

// Products, device groups and devices: the shape of a tenant's fleet.
extension SQLExecutor {
    func insertProduct(_ product: ProductDocument) async throws {
        try await query(
            "INSERT INTO products (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
            .of(product.id), .of(product.tenantId), .text(product.name), .text(product.description),
            .of(product.createdAt))
    }

    func updateProduct(_ product: ProductDocument) async throws {
        try await query(
            "UPDATE products SET name = $1, description = $2 WHERE id = $3",
            .text(product.name), .text(product.description), .of(product.id))
    }

    func product(_ id: ProductID, in tenant: TenantID) async throws -> ProductDocument? {
        try await query("SELECT * FROM products WHERE id = $1 AND tenant_id = $2", .of(id), .of(tenant))
            .first.map(ProductDocument.init(row:))
    }

    func product(named name: String, in tenant: TenantID) async throws -> ProductDocument? {
        try await query("SELECT * FROM products WHERE name = $1 AND tenant_id = $2", .text(name), .of(tenant))
            .first.map(ProductDocument.init(row:))
    }

    func products(in tenant: TenantID) async throws -> [ProductDocument] {
        try await query("SELECT * FROM products WHERE tenant_id = $1 ORDER BY name", .of(tenant))
            .map(ProductDocument.init(row:))
    }

    func deleteProduct(_ id: ProductID) async throws {
        for table in ["tuf_metadata", "tuf_targets"] {
            try await query(
                "DELETE FROM \(table) WHERE device_group_id IN (SELECT id FROM device_groups WHERE product_id = $1)", .of(id))
        }
        try await query(
            """
            DELETE FROM deployment_images WHERE deployment_id IN
            (SELECT d.id FROM deployments d JOIN device_groups g ON g.id = d.device_group_id WHERE g.product_id = $1)
            """, .of(id))
        try await query(
            "DELETE FROM deployments WHERE device_group_id IN (SELECT id FROM device_groups WHERE product_id = $1)", .of(id))
        try await query("DELETE FROM device_groups WHERE product_id = $1", .of(id))
        try await query("DELETE FROM products WHERE id = $1", .of(id))
    }

    func insertDeviceGroup(_ group: DeviceGroupDocument) async throws {
        try await query(
            """
            INSERT INTO device_groups (id, tenant_id, product_id, name, description, os_feed, update_policy, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            .of(group.id), .of(group.tenantId), .of(group.productId), .text(group.name), .text(group.description),
            .text(group.osFeed.rawValue), .text(group.updatePolicy.rawValue), .of(group.createdAt))
    }

    func updateDeviceGroup(_ group: DeviceGroupDocument) async throws {
        try await query(
            """
            UPDATE device_groups SET name = $1, description = $2, os_feed = $3, update_policy = $4,
            maintenance_start_minute = $5, maintenance_duration_minutes = $6, update_requested_at = $7 WHERE id = $8
            """,
            .text(group.name), .text(group.description), .text(group.osFeed.rawValue),
            .text(group.updatePolicy.rawValue), group.maintenanceWindow?.startMinute.map { .int(Int64($0)) } ?? .null,
            group.maintenanceWindow.map { .int(Int64($0.durationMinutes)) } ?? .null,
            group.updateRequestedAt.map { .of($0) } ?? .null, .of(group.id))
    }

    func deviceGroup(_ id: DeviceGroupID, in tenant: TenantID) async throws -> DeviceGroupDocument? {
        try await query("SELECT * FROM device_groups WHERE id = $1 AND tenant_id = $2", .of(id), .of(tenant))
            .first.map(DeviceGroupDocument.init(row:))
    }

    func deviceGroup(named name: String, product: ProductID) async throws -> DeviceGroupDocument? {
        try await query("SELECT * FROM device_groups WHERE name = $1 AND product_id = $2", .text(name), .of(product))
            .first.map(DeviceGroupDocument.init(row:))
    }

    func deviceGroups(in tenant: TenantID, product: ProductID?) async throws -> [DeviceGroupDocument] {
        let rows =
            if let product {
                try await query(
                    "SELECT * FROM device_groups WHERE tenant_id = $1 AND product_id = $2 ORDER BY name",
                    .of(tenant), .of(product))
            } else {
                try await query("SELECT * FROM device_groups WHERE tenant_id = $1 ORDER BY name", .of(tenant))
            }
        return try rows.map(DeviceGroupDocument.init(row:))
    }

    func deleteDeviceGroup(_ id: DeviceGroupID) async throws {
        for table in ["tuf_metadata", "tuf_targets"] {
            try await query("DELETE FROM \(table) WHERE device_group_id = $1", .of(id))
        }
        try await query(
            "DELETE FROM deployment_images WHERE deployment_id IN (SELECT id FROM deployments WHERE device_group_id = $1)", .of(id))
        try await query("DELETE FROM deployments WHERE device_group_id = $1", .of(id))
        try await query("DELETE FROM device_groups WHERE id = $1", .of(id))
    }

    /// How many devices are assigned to the group, or to any group of the product.
    func deviceCount(group: DeviceGroupID) async throws -> Int64 {
        try await query("SELECT COUNT(*) AS n FROM devices WHERE device_group_id = $1", .of(group)).first?.int("n") ?? 0
    }

    func deviceCount(product: ProductID) async throws -> Int64 {
        try await query(
            """
            SELECT COUNT(*) AS n FROM devices d JOIN device_groups g ON g.id = d.device_group_id
            WHERE g.product_id = $1
            """, .of(product)
        ).first?.int("n") ?? 0
    }

    /// Claims a device for `tenant` in one atomic statement, so two nodes (or two tenants)
    /// racing for the same device cannot both win. Returns `false` when it is claimed already.
    func claimDevice(_ record: ProvisioningRecord, tenant: TenantID, group: DeviceGroupID?, at time: Date) async throws -> Bool {
        let rows = try await query(
            """
            INSERT INTO devices (id, tenant_id, device_group_id, claimed_at, security_processor, identity_certificate,
                endorsement_key_certificate) VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,
                device_group_id = excluded.device_group_id, claimed_at = excluded.claimed_at,
                security_processor = excluded.security_processor, identity_certificate = excluded.identity_certificate,
                endorsement_key_certificate = excluded.endorsement_key_certificate
            WHERE devices.tenant_id IS NULL
            RETURNING id
            """,
            .of(record.deviceId), .of(tenant), group.map { .of($0) } ?? .null, .of(time),
            .text(record.securityProcessor.rawValue), .text(record.identityCertificate),
            record.endorsementKeyCertificate.map { .text($0) } ?? .null)
        return !rows.isEmpty
    }

    /// Everything issuing under `device`'s claim reads, in one statement: the claim (owner,
    /// security processor, registered identity), the owner's issuing CA at `now`, and the
    /// system software release whose measurement is `runtime` (lowercase hex). Nil when the
    /// device is not claimed.
    ///
    /// With `holdingClaim` (PostgreSQL), the device row stays share-locked until the
    /// transaction ends, so the claim cannot change before what is issued under it is
    /// committed; SQLite has no row locks and needs none, its write transactions running one
    /// at a time.
    func claimForIssuing(of device: DeviceID, runtime: String, now: Date, holdingClaim: Bool) async throws -> ClaimForIssuing? {
        guard let row = try await query(
            holdingClaim ? ClaimForIssuing.selectHoldingClaim : ClaimForIssuing.select, .of(device), .of(now), .text(runtime)
        ).first,
            let tenant = TenantID(try row.text("tenant_id")),
            let processor = SecurityProcessorKind(rawValue: try row.text("security_processor")),
            let pem = try row.optionalText("identity_certificate")
        else { return nil }
        let release = try row.optionalText("version") == nil ? nil : try SystemSoftwareRelease(row: row)
        return ClaimForIssuing(
            tenant: tenant, processor: processor, certificatePEM: pem, issuingCA: try row.optionalText("issuing_ca"),
            release: release)
    }

    func owner(of device: DeviceID) async throws -> TenantID? {
        try await query("SELECT tenant_id FROM devices WHERE id = $1", .of(device)).first?
            .optionalText("tenant_id").flatMap(TenantID.init)
    }

    func releaseDevice(_ id: DeviceID) async throws {
        try await query("DELETE FROM device_update_status WHERE device_id = $1", .of(id))
        try await query("DELETE FROM device_update_events WHERE device_id = $1", .of(id))
        try await query(
            "UPDATE devices SET tenant_id = NULL, device_group_id = NULL, claimed_at = NULL WHERE id = $1", .of(id))
    }

    func assignDevice(_ id: DeviceID, to group: DeviceGroupID) async throws {
        try await query("UPDATE devices SET device_group_id = $1 WHERE id = $2", .of(group), .of(id))
    }

    func device(_ id: DeviceID, in tenant: TenantID) async throws -> DeviceDocument? {
        try await query(Self.deviceSelect + " WHERE d.id = $1 AND d.tenant_id = $2", .of(id), .of(tenant))
            .first.map(DeviceDocument.init(row:))
    }

    func devices(in tenant: TenantID, group: DeviceGroupID?) async throws -> [DeviceDocument] {
        let rows =
            if let group {
                try await query(
                    Self.deviceSelect + " WHERE d.tenant_id = $1 AND d.device_group_id = $2 ORDER BY d.id",
                    .of(tenant), .of(group))
            } else {
                try await query(Self.deviceSelect + " WHERE d.tenant_id = $1 ORDER BY d.id", .of(tenant))
            }
        return try rows.map(DeviceDocument.init(row:))
    }

    private static var deviceSelect: String {
        """
        SELECT d.id, d.tenant_id, d.device_group_id, d.claimed_at, d.security_processor, g.product_id
        FROM devices d LEFT JOIN device_groups g ON g.id = d.device_group_id
        """
    }
}

extension ProductDocument {
    init(row: SQLRow) throws {
        self.init(
            id: ProductID(try row.text("id"))!, tenantId: TenantID(try row.text("tenant_id"))!,
            name: try row.text("name"), description: try row.text("description"), createdAt: try row.date("created_at"))
    }
}

extension DeviceGroupDocument {
    init(row: SQLRow) throws {
        self.init(
            id: DeviceGroupID(try row.text("id"))!, tenantId: TenantID(try row.text("tenant_id"))!,
            productId: ProductID(try row.text("product_id"))!, name: try row.text("name"),
            description: try row.text("description"), osFeed: OSFeed(rawValue: try row.text("os_feed")) ?? .retail,
            updatePolicy: UpdatePolicy(rawValue: try row.text("update_policy")) ?? .all,
            createdAt: try row.date("created_at"), maintenanceWindow: try MaintenanceWindow(row: row),
            updateRequestedAt: try row.optionalDate("update_requested_at"))
    }
}

extension DeviceDocument {
    init(row: SQLRow) throws {
        self.init(
            id: DeviceID(try row.text("id"))!, tenantId: TenantID(try row.text("tenant_id"))!,
            deviceGroupId: try row.optionalText("device_group_id").flatMap(DeviceGroupID.init),
            productId: try row.optionalText("product_id").flatMap(ProductID.init),
            claimedAt: try row.date("claimed_at"),
            securityProcessor: SecurityProcessorKind(rawValue: try row.text("security_processor")) ?? .softwareDICE)
    }
}

extension MaintenanceWindow {
    /// The window stored as start minute and duration, if the group has one.
    init?(row: SQLRow) throws {
        guard case .int(let start) = row.values["maintenance_start_minute"] ?? .null,
            case .int(let duration) = row.values["maintenance_duration_minutes"] ?? .null
        else { return nil }
        self.init(startUTC: String(format: "%02d:%02d", Int(start) / 60, Int(start) % 60), durationMinutes: Int(duration))
    }
}

/// What ``SQLExecutor/claimForIssuing(of:runtime:now:holdingClaim:)`` reads.
struct ClaimForIssuing {
    let tenant: TenantID
    let processor: SecurityProcessorKind
    /// The identity registered at the claim, PEM.
    let certificatePEM: String
    /// The row ID of the owner's issuing CA; nil if it has none (which is a fault).
    let issuingCA: String?
    /// The release with the runtime's measurement, if there is one.
    let release: SystemSoftwareRelease?

    /// `$1` the device, `$2` now, `$3` the runtime's measurement.
    static let select = """
        SELECT d.tenant_id, d.security_processor, d.identity_certificate,
            (\(ServicePKI.issuingCASelect(tenant: "d.tenant_id"))) AS issuing_ca,
            r.version, r.measurement, r.feed, r.security_version, r.published_at, r.revoked_at, r.revocation_reason, r.image_id
        FROM devices d LEFT JOIN system_software_releases r ON r.measurement = $3
        WHERE d.id = $1 AND d.tenant_id IS NOT NULL
        """
    static let selectHoldingClaim = select + " FOR SHARE OF d"
}
