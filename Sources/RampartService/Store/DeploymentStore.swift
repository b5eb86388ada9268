import Foundation
import RampartModel

// Deployments, and what devices report about their updates.
extension SQLExecutor {
    /// Inserts a deployment as its group's newest (the caller holds the group's row lock on
    /// PostgreSQL, so positions do not race).
    func insertDeployment(_ deployment: DeploymentDocument) async throws {
        let position = try await query(
            "SELECT COALESCE(MAX(position), 0) + 1 AS next FROM deployments WHERE device_group_id = $1", .of(deployment.deviceGroupId)
        ).first?.int("next") ?? 1
        let rollout = deployment.rollout
        let canary = try rollout.map { String(decoding: try JSONEncoder.rampart.encode($0.canaryDevices), as: UTF8.self) }
        try await query(
            """
            INSERT INTO deployments (id, tenant_id, device_group_id, position, created_at, created_by, canary_devices,
                previous_deployment_id, soak_until, halt_threshold)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            .of(deployment.id), .of(deployment.tenantId), .of(deployment.deviceGroupId), .int(position),
            .of(deployment.createdAt), .text(deployment.createdBy), .of(canary), .of(rollout?.previousDeploymentId?.description),
            rollout.map { .of($0.soakUntil) } ?? .null, rollout.map { .int(Int64($0.haltThresholdPerThousand)) } ?? .null)
        for (index, image) in deployment.images.enumerated() {
            try await query(
                "INSERT INTO deployment_images (deployment_id, position, image_id) VALUES ($1, $2, $3)", .of(deployment.id),
                .int(Int64(index)), .of(image.imageId))
        }
    }

    /// The group's deployments, newest first.
    func deployments(group: DeviceGroupID, limit: Int = 100) async throws -> [DeploymentDocument] {
        let rows = try await query(
            "SELECT * FROM deployments WHERE device_group_id = $1 ORDER BY position DESC LIMIT $2", .of(group), .int(Int64(limit)))
        var deployments: [DeploymentDocument] = []
        for row in rows { deployments.append(try await deployment(from: row)) }
        return deployments
    }

    func newestDeployment(group: DeviceGroupID) async throws -> DeploymentDocument? {
        try await deployments(group: group, limit: 1).first
    }

    func deployment(_ id: DeploymentID, in tenant: TenantID) async throws -> DeploymentDocument? {
        guard let row = try await query("SELECT * FROM deployments WHERE id = $1 AND tenant_id = $2", .of(id), .of(tenant)).first
        else { return nil }
        return try await deployment(from: row)
    }

    private func deployment(from row: SQLRow) async throws -> DeploymentDocument {
        let id = try row.text("id")
        let images = try await query(
            """
            SELECT i.* FROM deployment_images d JOIN images i ON i.id = d.image_id
            WHERE d.deployment_id = $1 ORDER BY d.position
            """, .text(id)
        ).map { DeployedImage(try ImageDocument(row: $0)) }
        guard let deploymentID = DeploymentID(id), let tenant = TenantID(try row.text("tenant_id")),
            let group = DeviceGroupID(try row.text("device_group_id"))
        else { throw DatabaseError(description: "deployments row is malformed") }
        var rollout: Rollout?
        if let canary = try row.optionalText("canary_devices") {
            rollout = Rollout(
                state: .canary, canaryDevices: try JSONDecoder.rampart.decode([DeviceID].self, from: Data(canary.utf8)),
                previousDeploymentId: try row.optionalText("previous_deployment_id").flatMap { DeploymentID($0) },
                soakUntil: try row.date("soak_until"), haltThresholdPerThousand: Int(try row.int("halt_threshold")),
                pausedAt: try row.optionalDate("paused_at"), pauseReason: try row.optionalText("pause_reason"),
                pausedBy: try row.optionalText("paused_by"), resumedAt: try row.optionalDate("resumed_at"))
        }
        return DeploymentDocument(
            id: deploymentID, tenantId: tenant, deviceGroupId: group, images: images, createdAt: try row.date("created_at"),
            createdBy: try row.text("created_by"), rollout: rollout)
    }

    /// What the devices outside a staged deployment's canary keep running (nil: no deployment).
    func previousDeployment(of rollout: Rollout, tenant: TenantID) async throws -> DeploymentDocument? {
        guard let id = rollout.previousDeploymentId else { return nil }
        return try await deployment(id, in: tenant)
    }

    /// Pauses a staged deployment's rollout; false when it is paused already.
    func pauseRollout(_ id: DeploymentID, reason: String, by actor: String, at time: Date) async throws -> Bool {
        !(try await query(
            """
            UPDATE deployments SET paused_at = $1, pause_reason = $2, paused_by = $3
            WHERE id = $4 AND canary_devices IS NOT NULL AND paused_at IS NULL RETURNING id
            """, .of(time), .text(reason), .text(actor), .of(id)
        ).isEmpty)
    }

    /// Resumes a paused rollout; false when it was not paused.
    func resumeRollout(_ id: DeploymentID, at time: Date) async throws -> Bool {
        !(try await query(
            "UPDATE deployments SET paused_at = NULL, resumed_at = $1 WHERE id = $2 AND paused_at IS NOT NULL RETURNING id", .of(time),
            .of(id)
        ).isEmpty)
    }

    /// Records that the device contacted the service.
    func recordContact(device: DeviceID, tenant: TenantID, at time: Date) async throws {
        try await query(
            """
            INSERT INTO device_update_status (device_id, tenant_id, last_contact_at) VALUES ($1, $2, $3)
            ON CONFLICT (device_id) DO UPDATE SET last_contact_at = excluded.last_contact_at, tenant_id = excluded.tenant_id
            """, .of(device), .of(tenant), .of(time))
    }

    /// Stores a report unless a newer one is stored. Returns the stored sequence when the
    /// report is older (nothing written), nil when it was stored or repeats the stored one.
    func recordUpdateReport(
        _ report: DeviceUpdateReport, device: DeviceID, tenant: TenantID, at time: Date, requestSeen: Date? = nil
    ) async throws -> Int64? {
        let current = try await updateStatusRow(device: device, tenant: tenant)
        if case .int(let stored) = current?.values["sequence"] ?? .null {
            if Int64(report.sequence) < stored { return stored }
            if Int64(report.sequence) == stored { return nil }
        }
        let running = String(decoding: try JSONEncoder.rampart.encode(report.running), as: UTF8.self)
        try await query(
            """
            INSERT INTO device_update_status (device_id, tenant_id, sequence, deployment_id, state, reason, detail, running_json,
                deferred_until, reported_at, last_contact_at, update_request_seen)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
            ON CONFLICT (device_id) DO UPDATE SET tenant_id = excluded.tenant_id, sequence = excluded.sequence,
                deployment_id = excluded.deployment_id, state = excluded.state, reason = excluded.reason,
                detail = excluded.detail, running_json = excluded.running_json, deferred_until = excluded.deferred_until,
                reported_at = excluded.reported_at, last_contact_at = excluded.last_contact_at,
                update_request_seen = excluded.update_request_seen
            """,
            .of(device), .of(tenant), .int(Int64(report.sequence)), report.deploymentId.map { .of($0) } ?? .null,
            .text(report.state.rawValue), .of(report.reason), .of(report.detail), .text(running),
            report.deferredUntil.map { .of($0) } ?? .null, .of(time), requestSeen.map { .of($0) } ?? .null)
        try await query(
            """
            INSERT INTO device_update_events (device_id, tenant_id, sequence, deployment_id, state, reason, detail, reported_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            .of(device), .of(tenant), .int(Int64(report.sequence)), report.deploymentId.map { .of($0) } ?? .null,
            .text(report.state.rawValue), .of(report.reason), .of(report.detail), .of(time))
        try await query(
            """
            DELETE FROM device_update_events WHERE device_id = $1 AND id NOT IN
            (SELECT id FROM device_update_events WHERE device_id = $1 ORDER BY id DESC LIMIT 100)
            """, .of(device))
        return nil
    }

    /// The device's stored report and contact, as `StoredUpdateStatus`.
    func updateStatus(device: DeviceID, tenant: TenantID) async throws -> StoredUpdateStatus? {
        try await updateStatusRow(device: device, tenant: tenant).map(StoredUpdateStatus.init(row:))
    }

    private func updateStatusRow(device: DeviceID, tenant: TenantID) async throws -> SQLRow? {
        try await query("SELECT * FROM device_update_status WHERE device_id = $1 AND tenant_id = $2", .of(device), .of(tenant)).first
    }
}

/// A device's newest update report (if it sent one) and its last contact.
struct StoredUpdateStatus: Sendable {
    var report: DeviceUpdateReport?
    var reportedAt: Date?
    var lastContactAt: Date?
    /// The group's update-now request the device's last report answered.
    var requestSeen: Date?

    init(report: DeviceUpdateReport?, reportedAt: Date?, lastContactAt: Date?) {
        self.report = report
        self.reportedAt = reportedAt
        self.lastContactAt = lastContactAt
    }

    init(row: SQLRow) throws {
        lastContactAt = try row.optionalDate("last_contact_at")
        requestSeen = try row.optionalDate("update_request_seen")
        reportedAt = try row.optionalDate("reported_at")
        guard let state = try row.optionalText("state").flatMap(DeviceUpdateState.init(rawValue:)),
            let runningJSON = try row.optionalText("running_json")
        else { return }
        report = DeviceUpdateReport(
            sequence: Int(try row.int("sequence")), deploymentId: try row.optionalText("deployment_id").flatMap(DeploymentID.init),
            state: state, reason: try row.optionalText("reason"), detail: try row.optionalText("detail"),
            running: try JSONDecoder.rampart.decode(RunningSoftware.self, from: Data(runningJSON.utf8)),
            deferredUntil: try row.optionalDate("deferred_until"))
    }
}

extension DeployedImage {
    init(_ image: ImageDocument) {
        self.init(
            imageId: image.id, componentId: image.componentId, name: image.name, version: image.version,
            securityVersion: image.securityVersion)
    }
}
