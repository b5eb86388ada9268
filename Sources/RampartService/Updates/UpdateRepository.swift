import Crypto
import Foundation
import RampartModel
import RampartTUF

/// Each device group's TUF repository: one root per tenant, and per group targets (the
/// images its devices should run, plus `deployment.json` with the policy they obey),
/// snapshot and timestamp, signed online.
///
/// ``publish(group:db:now:)`` runs when a device asks for `timestamp.json`: versions move
/// only when the desired targets change, and otherwise each role is re-signed once it nears
/// its expiry, so what devices see always follows the newest deployment and release.
struct UpdateRepository: Sendable {
    struct Lifetimes: Sendable {
        var root: TimeInterval = 365 * 86_400, rootRenewal: TimeInterval = 60 * 86_400
        var targets: TimeInterval = 30 * 86_400, targetsRenewal: TimeInterval = 10 * 86_400
        var snapshot: TimeInterval = 7 * 86_400, snapshotRenewal: TimeInterval = 3 * 86_400
        var timestamp: TimeInterval = 86_400, timestampRenewal: TimeInterval = 12 * 3600
        /// A target stays fetchable this long after it was last listed (for devices mid-update).
        var targetRetention: TimeInterval = 7 * 86_400
    }

    let pki: ServicePKI
    var lifetimes = Lifetimes()

    /// The tenant's current root, created (version 1) on first use and re-signed as the next
    /// version (same keys) when under `rootRenewal` of its life remains.
    func currentRoot(tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> (version: Int, bytes: Data) {
        let latest = try await db.query(
            "SELECT version, bytes, expires_at FROM tuf_roots WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", .of(tenant)
        ).first
        if let latest, try latest.date("expires_at").timeIntervalSince(now) >= lifetimes.rootRenewal {
            return (Int(try latest.int("version")), Data(try latest.blob("bytes") ?? []))
        }
        let version = Int(try latest?.int("version") ?? 0) + 1
        let keys = try await roleKeys(tenant: tenant, db: db, now: now)
        let root = RootMetadata(
            version: version, expires: now.addingTimeInterval(lifetimes.root), keys: keys.map(\.value.key),
            roles: Dictionary(uniqueKeysWithValues: keys.map { role, signer in (role, RoleKeys(keyIDs: [signer.key.keyID], threshold: 1)) }))
        let bytes = try SignedEnvelope.make(root.json, signers: [keys[.root]!])
        let inserted = try await db.query(
            """
            INSERT INTO tuf_roots (tenant_id, version, bytes, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT DO NOTHING RETURNING version
            """,
            .of(tenant), .int(Int64(version)), .blob([UInt8](bytes)), .of(root.common.expires), .of(now))
        guard inserted.isEmpty else { return (version, bytes) }
        // Another group of the tenant published this root version at the same moment: use theirs.
        guard let theirs = try await self.root(tenant: tenant, version: version, db: db) else {
            throw ServiceError(500, "update_root_missing", "root version \(version) of tenant \(tenant) could not be stored")
        }
        return (version, theirs)
    }

    func latestRoot(tenant: TenantID, db: any SQLExecutor) async throws -> Data? {
        try await db.query("SELECT bytes FROM tuf_roots WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", .of(tenant))
            .first.flatMap { try $0.blob("bytes") }.map { Data($0) }
    }

    func root(tenant: TenantID, version: Int, db: any SQLExecutor) async throws -> Data? {
        try await db.query("SELECT bytes FROM tuf_roots WHERE tenant_id = $1 AND version = $2", .of(tenant), .int(Int64(version)))
            .first.flatMap { try $0.blob("bytes") }.map { Data($0) }
    }

    /// Brings the group's targets, snapshot and timestamp up to date, in the caller's
    /// transaction (which holds the group's row lock on PostgreSQL).
    func publish(group: DeviceGroupDocument, db: any SQLExecutor, now: Date) async throws {
        _ = try await currentRoot(tenant: group.tenantId, db: db, now: now)
        let (desired, deploymentFile) = try await desiredTargets(group: group, db: db, now: now)
        let current = try await latest(.targets, group: group.id, db: db)
        let keys = try await roleKeys(tenant: group.tenantId, db: db, now: now)
        var targetsFile = current
        let newTargets = try targetsChanged(current, desired) || current.map { $0.expires.timeIntervalSince(now) < lifetimes.targetsRenewal } ?? true
        if newTargets {
            try await list(desired, deploymentFile: deploymentFile, group: group.id, db: db, now: now)
            let version = (current?.version ?? 0) + 1
            let metadata = TargetsMetadata(version: version, expires: now.addingTimeInterval(lifetimes.targets), targets: desired)
            targetsFile = try await store(
                .targets, group: group.id, version: version, expires: metadata.common.expires,
                bytes: try SignedEnvelope.make(metadata.json, signers: [keys[.targets]!]), db: db, now: now)
        }
        let snapshot = try await latest(.snapshot, group: group.id, db: db)
        var snapshotFile = snapshot
        let newSnapshot = newTargets || snapshot.map { $0.expires.timeIntervalSince(now) < lifetimes.snapshotRenewal } ?? true
        if newSnapshot, let targetsFile {
            let version = (snapshot?.version ?? 0) + 1
            let metadata = SnapshotMetadata(
                version: version, expires: now.addingTimeInterval(lifetimes.snapshot),
                targets: MetaFile(version: targetsFile.version, describing: targetsFile.bytes))
            snapshotFile = try await store(
                .snapshot, group: group.id, version: version, expires: metadata.common.expires,
                bytes: try SignedEnvelope.make(metadata.json, signers: [keys[.snapshot]!]), db: db, now: now)
        }
        let timestamp = try await latest(.timestamp, group: group.id, db: db)
        let newTimestamp = newSnapshot || timestamp.map { $0.expires.timeIntervalSince(now) < lifetimes.timestampRenewal } ?? true
        if newTimestamp, let snapshotFile {
            let version = (timestamp?.version ?? 0) + 1
            let metadata = TimestampMetadata(
                version: version, expires: now.addingTimeInterval(lifetimes.timestamp),
                snapshot: MetaFile(version: snapshotFile.version, describing: snapshotFile.bytes))
            _ = try await store(
                .timestamp, group: group.id, version: version, expires: metadata.common.expires,
                bytes: try SignedEnvelope.make(metadata.json, signers: [keys[.timestamp]!]), db: db, now: now)
        }
    }

    /// Whether ``publish(group:db:now:)`` would write anything: the desired targets changed, or
    /// a role (or the root) nears its expiry. Reads only, so the common poll takes no write lock.
    func needsPublish(group: DeviceGroupDocument, db: any SQLExecutor, now: Date) async throws -> Bool {
        let root = try await db.query(
            "SELECT expires_at FROM tuf_roots WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", .of(group.tenantId)
        ).first
        guard let rootExpiry = try root?.date("expires_at"), rootExpiry.timeIntervalSince(now) >= lifetimes.rootRenewal else { return true }
        let renewals: [(RoleName, TimeInterval)] = [
            (.targets, lifetimes.targetsRenewal), (.snapshot, lifetimes.snapshotRenewal), (.timestamp, lifetimes.timestampRenewal),
        ]
        var targets: StoredFile?
        for (role, window) in renewals {
            guard let file = try await latest(role, group: group.id, db: db), file.expires.timeIntervalSince(now) >= window else { return true }
            if role == .targets { targets = file }
        }
        return try targetsChanged(targets, try await desiredTargets(group: group, db: db, now: now).targets)
    }

    private func targetsChanged(_ current: StoredFile?, _ desired: [String: TargetFile]) throws -> Bool {
        guard let current else { return true }
        return try TargetsMetadata(json: try SignedEnvelope(parsing: current.bytes, limit: .max).signed).targets != desired
    }

    struct StoredFile: Sendable {
        let version: Int
        let bytes: Data
        let expires: Date
    }

    func latest(_ role: RoleName, group: DeviceGroupID, db: any SQLExecutor) async throws -> StoredFile? {
        try await db.query(
            "SELECT version, bytes, expires_at FROM tuf_metadata WHERE device_group_id = $1 AND role = $2 ORDER BY version DESC LIMIT 1",
            .of(group), .text(role.rawValue)
        ).first.map(StoredFile.init(row:))
    }

    func file(_ role: RoleName, version: Int, group: DeviceGroupID, db: any SQLExecutor) async throws -> Data? {
        try await db.query(
            "SELECT version, bytes, expires_at FROM tuf_metadata WHERE device_group_id = $1 AND role = $2 AND version = $3",
            .of(group), .text(role.rawValue), .int(Int64(version))
        ).first.map { try StoredFile(row: $0).bytes }
    }

    /// The bytes of `path` with hash `sha256`, if the group lists (or recently listed) it.
    func target(path: String, sha256: String, group: DeviceGroupID, db: any SQLExecutor, now: Date) async throws -> Data? {
        let listed = try await db.query(
            "SELECT sha256 FROM tuf_targets WHERE device_group_id = $1 AND path = $2 AND sha256 = $3 AND last_listed_at >= $4",
            .of(group), .text(path), .text(sha256), .of(now.addingTimeInterval(-lifetimes.targetRetention)))
        guard !listed.isEmpty else { return nil }
        return try await db.blob(sha256: sha256)
    }

    private func store(
        _ role: RoleName, group: DeviceGroupID, version: Int, expires: Date, bytes: Data, db: any SQLExecutor, now: Date
    ) async throws -> StoredFile {
        try await db.query(
            "INSERT INTO tuf_metadata (device_group_id, role, version, bytes, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            .of(group), .text(role.rawValue), .int(Int64(version)), .blob([UInt8](bytes)), .of(expires), .of(now))
        return StoredFile(version: version, bytes: bytes, expires: expires)
    }

    /// The group's targets as they should be now: each desired image, and `deployment.json`
    /// (whose bytes come along, to be stored only when a new targets version lists them).
    private func desiredTargets(group: DeviceGroupDocument, db: any SQLExecutor, now: Date) async throws
        -> (targets: [String: TargetFile], deploymentFile: Data)
    {
        let desired = try await DesiredState.desired(group: group, db: db, now: now)
        var images: [ImageDocument] = []
        if let id = desired.systemSoftware?.imageId, let image = try await db.anyImage(id) { images.append(image) }
        if desired.appsManaged {
            for app in desired.apps { if let image = try await db.anyImage(app.imageId) { images.append(image) } }
        }
        // A running stage: the devices outside the canary keep the previous deployment's apps.
        var stage: (rollout: Rollout, previous: DeploymentDocument?, images: [ImageDocument])?
        if desired.appsManaged, let newest = try await db.newestDeployment(group: group.id), let rollout = newest.rollout,
            rollout.state(at: now) != .complete
        {
            let previous = try await db.previousDeployment(of: rollout, tenant: group.tenantId)
            var previousImages: [ImageDocument] = []
            for app in previous?.images ?? [] { if let image = try await db.anyImage(app.imageId) { previousImages.append(image) } }
            for image in previousImages where !images.contains(where: { $0.id == image.id }) { images.append(image) }
            stage = (rollout, previous, previousImages)
        }
        var targets: [String: TargetFile] = [:]
        for image in images {
            targets["\(image.id).imagepackage"] = TargetFile(
                length: image.length, sha256: image.sha256, custom: .object(["rampart": Self.describe(image)]))
        }
        var file = Self.deploymentFile(desired, group: group.id, images: images.filter { image in
            stage == nil || desired.apps.contains { $0.imageId == image.id } || image.kind == .systemSoftware
        })
        if let stage, case .object(var fields) = file {
            var previous: [String: JSONValue] = ["apps": .array(stage.images.map(Self.describe)), "appsManaged": .bool(stage.previous != nil)]
            if let id = stage.previous?.id { previous["deploymentId"] = .string(id.description) }
            fields["rollout"] = .object([
                "canaryDevices": .array(stage.rollout.canaryDevices.map { .string($0.hex) }), "previous": .object(previous),
            ])
            file = .object(fields)
        }
        let deployment = file.jsonBytes
        targets[Self.deploymentTarget] = TargetFile(describing: deployment)
        return (targets, deployment)
    }

    /// Records the targets a new targets version lists as fetchable from now on, and those
    /// it drops as fetchable for `targetRetention` more (devices may be mid-download).
    private func list(_ targets: [String: TargetFile], deploymentFile: Data, group: DeviceGroupID, db: any SQLExecutor, now: Date) async throws {
        try await db.storeBlob(deploymentFile, sha256: targets[Self.deploymentTarget]!.sha256)
        try await db.query(
            "UPDATE tuf_targets SET last_listed_at = $1 WHERE device_group_id = $2 AND last_listed_at > $1", .of(now), .of(group))
        for (path, target) in targets {
            try await db.query(
                """
                INSERT INTO tuf_targets (device_group_id, path, sha256, last_listed_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (device_group_id, path, sha256) DO UPDATE SET last_listed_at = excluded.last_listed_at
                """, .of(group), .text(path), .text(target.sha256), .of(Self.listedNow))
        }
    }

    /// `last_listed_at` of a target the current targets version lists.
    static let listedNow = Date(timeIntervalSince1970: 253_402_300_799)  // 9999-12-31

    static let deploymentTarget = "deployment.json"

    static func describe(_ image: ImageDocument) -> JSONValue {
        .object([
            "kind": .string(image.kind.rawValue), "componentId": .string(image.componentId.description),
            "imageId": .string(image.id.description), "version": .string(image.version),
            "securityVersion": .integer(Int64(image.securityVersion)),
        ])
    }

    /// `deployment.json`: every policy the device obeys, signed through the targets role.
    static func deploymentFile(_ desired: DesiredSoftware, group: DeviceGroupID, images: [ImageDocument]) -> JSONValue {
        var fields: [String: JSONValue] = [
            "schemaVersion": .integer(1), "appsManaged": .bool(desired.appsManaged), "deviceGroupId": .string(group.description),
            "apps": .array(images.filter { $0.kind == .app }.map(describe)),
        ]
        if let deployment = desired.deploymentId { fields["deploymentId"] = .string(deployment.description) }
        if let system = images.first(where: { $0.kind == .systemSoftware }) { fields["systemSoftware"] = describe(system) }
        if let window = desired.maintenanceWindow {
            fields["maintenanceWindow"] = .object([
                "startUTC": .string(window.startUTC), "durationMinutes": .integer(Int64(window.durationMinutes)),
            ])
        }
        return .object(fields)
    }

    /// The tenant's four role signers.
    private func roleKeys(tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> [RoleName: TUFSigner] {
        var signers: [RoleName: TUFSigner] = [:]
        for (role, purpose) in [(RoleName.root, SigningPurpose.tufRoot), (.targets, .tufTargets), (.snapshot, .tufSnapshot), (.timestamp, .tufTimestamp)] {
            let key = try await pki.signingKey(purpose, tenant: tenant, db: db, now: now, replacingNearEnd: false)
            signers[role] = try TUFSigner(privateKeyPEM: key.privateKeyPEM)
        }
        return signers
    }
}

extension UpdateRepository.StoredFile {
    init(row: SQLRow) throws {
        self.init(version: Int(try row.int("version")), bytes: Data(try row.blob("bytes") ?? []), expires: try row.date("expires_at"))
    }
}

extension SQLExecutor {
    /// An image by ID whoever owns it (the repository asks for system software and apps alike).
    func anyImage(_ id: ImageID) async throws -> ImageDocument? {
        try await query("SELECT * FROM images WHERE id = $1", .of(id)).first.map(ImageDocument.init(row:))
    }
}
