import Crypto
import Foundation
import RampartModel

/// Staged deployments: a canary share of the group first, the rest after the soak time,
/// and a halt when the canary fails more than the devices on the previous images.
///
/// While the stage runs (`canary`, or `paused`), the group's signed `deployment.json`
/// carries the canary devices and the previous deployment's apps; a device outside the
/// canary installs the previous apps, and the repository withholds the new images from it.
/// Each failure report from the group re-evaluates the halt (``halt(group:db:now:)``).
enum Rollouts {
    /// The rollout of a new deployment, or nil when none was asked for.
    static func make(
        _ request: RolloutRequest?, deployment: DeploymentID, groupDevices: [DeviceID], previous: DeploymentID?, now: Date
    ) throws -> Rollout? {
        guard let request else { return nil }
        let canary: [DeviceID]
        switch (request.canaryPercent, request.canaryDevices) {
        case (let percent?, nil):
            guard (1...99).contains(percent) else { throw ServiceError.invalidField("rollout.canaryPercent", "must be 1–99") }
            guard !groupDevices.isEmpty else {
                throw ServiceError.invalidField("rollout.canaryPercent", "the device group has no devices to pick a canary from")
            }
            let count = max(1, (groupDevices.count * percent + 99) / 100)
            canary = Array(groupDevices.sorted { rank($0, deployment) < rank($1, deployment) }.prefix(count)).sorted()
        case (nil, let devices?):
            guard !devices.isEmpty, devices.count <= 10_000 else {
                throw ServiceError.invalidField("rollout.canaryDevices", "must name 1–10000 devices")
            }
            let members = Set(groupDevices)
            if let stranger = devices.first(where: { !members.contains($0) }) {
                throw ServiceError.invalidField("rollout.canaryDevices", "device \(stranger) is not in the device group")
            }
            canary = Array(Set(devices)).sorted()
        default:
            throw ServiceError.invalidField("rollout", "give exactly one of canaryPercent and canaryDevices")
        }
        let soak = request.soakMinutes ?? RolloutRequest.defaultSoakMinutes
        guard (1...10_080).contains(soak) else { throw ServiceError.invalidField("rollout.soakMinutes", "must be 1–10080") }
        let threshold = request.haltThresholdPerThousand ?? RolloutRequest.defaultHaltThreshold
        guard (1...1000).contains(threshold) else { throw ServiceError.invalidField("rollout.haltThresholdPerThousand", "must be 1–1000") }
        return Rollout(
            state: .canary, canaryDevices: canary, previousDeploymentId: previous, soakUntil: now.addingTimeInterval(Double(soak) * 60),
            haltThresholdPerThousand: threshold)
    }

    /// A stable, unguessable-in-advance order for picking a canary share.
    static func rank(_ device: DeviceID, _ deployment: DeploymentID) -> String {
        SHA256.hash(data: Data("\(deployment)/\(device.hex)".utf8)).hexString
    }

    /// The deployment the devices outside a running stage keep: the newest one before it,
    /// as its own devices run it (a stage superseding a stage keeps the older previous).
    static func previous(of newest: DeploymentDocument?, now: Date) -> DeploymentID? {
        guard let newest else { return nil }
        if let rollout = newest.rollout, rollout.state(at: now) != .complete { return rollout.previousDeploymentId }
        return newest.id
    }

    /// The failure categories that count against a rollout.
    static let failures: [FailureReport.Category] = [.crash, .exit, .oom, .watchdog, .crashLoop, .updateRolledBack]

    /// Pauses the group's staged deployment when, since its stage began (or resumed), the
    /// share of canary devices with failures of the new images exceeds the share of the
    /// other devices with failures of the previous images by more than the threshold.
    /// Records why, in the deployment and the audit log. Returns whether it paused.
    @discardableResult
    static func halt(group: DeviceGroupID, tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> Bool {
        guard let deployment = try await db.newestDeployment(group: group), let rollout = deployment.rollout,
            rollout.state(at: now) == .canary
        else { return false }
        let previous = try await db.previousDeployment(of: rollout, tenant: tenant)
        let previousImages = Set(previous?.images.map(\.imageId) ?? [])
        let newImages = deployment.images.map(\.imageId).filter { !previousImages.contains($0) }
        guard !newImages.isEmpty else { return false }
        let since = max(deployment.createdAt, rollout.resumedAt ?? .distantPast)
        let canary = Set(rollout.canaryDevices)
        let failingNew = try await failingDevices(group: group, tenant: tenant, images: newImages, since: since, db: db)
            .filter { canary.contains($0) }
        guard !failingNew.isEmpty else { return false }
        let others = try await db.devices(in: tenant, group: group).map(\.id).filter { !canary.contains($0) }
        let failingOld = try await failingDevices(group: group, tenant: tenant, images: Array(previousImages), since: since, db: db)
            .filter { !canary.contains($0) }
        let newRate = 1000 * Double(failingNew.count) / Double(canary.count)
        let oldRate = others.isEmpty ? 0 : 1000 * Double(failingOld.count) / Double(others.count)
        guard newRate - oldRate > Double(rollout.haltThresholdPerThousand) else { return false }
        let reason = String(
            format: "halted by itself: %d of %d canary devices failed on the new images (%.0f per 1000) against %.0f per 1000 on the previous images, over the threshold of %d",
            failingNew.count, canary.count, newRate, oldRate, rollout.haltThresholdPerThousand)
        guard try await db.pauseRollout(deployment.id, reason: reason, by: "rampart-server", at: now) else { return false }
        try await db.appendAudit(
            tenant: tenant, actor: "rampart-server", action: "deployment.pause", target: "deployment/\(deployment.id)",
            outcome: "crash_rate_exceeded", at: now)
        return true
    }

    private static func failingDevices(
        group: DeviceGroupID, tenant: TenantID, images: [ImageID], since: Date, db: any SQLExecutor
    ) async throws -> Set<DeviceID> {
        guard !images.isEmpty else { return [] }
        var binds: [SQLValue] = [.of(tenant), .of(group), .of(since)]
        let imageList = images.map { image -> String in
            binds.append(.of(image))
            return "$\(binds.count)"
        }.joined(separator: ", ")
        let categoryList = failures.map { category -> String in
            binds.append(.text(category.rawValue))
            return "$\(binds.count)"
        }.joined(separator: ", ")
        let rows = try await db.query(
            """
            SELECT DISTINCT device_id FROM failure_reports
            WHERE tenant_id = $1 AND device_group_id = $2 AND time >= $3 AND event_type = 'unplanned'
                AND image_id IN (\(imageList)) AND category IN (\(categoryList))
            """, binds)
        return Set(try rows.compactMap { DeviceID(try $0.text("device_id")) })
    }

    /// Whether the repository withholds `image` from `device`: it is new in a stage that
    /// does not reach the device.
    static func withholds(_ image: ImageID, from device: DeviceID, group: DeviceGroupID, tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> Bool {
        guard let deployment = try await db.newestDeployment(group: group), let rollout = deployment.rollout,
            !rollout.reaches(device, at: now), deployment.images.contains(where: { $0.imageId == image })
        else { return false }
        let previous = try await db.previousDeployment(of: rollout, tenant: tenant)
        return previous?.images.contains { $0.imageId == image } != true
    }
}

extension DeploymentDocument {
    /// The document with its rollout's state as of `now`.
    func presented(at now: Date) -> DeploymentDocument {
        var copy = self
        if let rollout { copy.rollout?.state = rollout.state(at: now) }
        return copy
    }
}
