import Foundation
import RampartModel

/// What a device group's devices should run — the one function behind the status route
/// and (later) the update repository, so what is shown is what is served.
enum DesiredState {
    /// The feeds a group on `feed` takes releases from: `retail-eval` groups evaluate the
    /// next release and still get every retail one.
    static func feeds(for feed: OSFeed) -> Set<OSFeed> {
        feed == .retail ? [.retail] : [.retail, .retailEval]
    }

    /// The newest deliverable, unrevoked release on the group's feeds: highest security
    /// version, then the latest published.
    static func systemSoftware(for feed: OSFeed, among releases: [SystemSoftwareRelease]) -> SystemSoftwareRelease? {
        let feeds = feeds(for: feed)
        return releases
            .filter { $0.imageId != nil && $0.revokedAt == nil && feeds.contains($0.feed) }
            .max { ($0.securityVersion, $0.publishedAt) < ($1.securityVersion, $1.publishedAt) }
    }

    static func desired(
        group: DeviceGroupDocument, newest deployment: DeploymentDocument?, releases: [SystemSoftwareRelease]
    ) -> DesiredSoftware {
        DesiredSoftware(
            systemSoftware: systemSoftware(for: group.osFeed, among: releases), deploymentId: deployment?.id,
            apps: deployment?.images ?? [], appsManaged: deployment != nil && group.updatePolicy == .all,
            maintenanceWindow: group.maintenanceWindow)
    }

    /// For `device` when given: outside a running stage's canary it should run the
    /// previous deployment's apps.
    static func desired(group: DeviceGroupDocument, db: any SQLExecutor, now: Date, device: DeviceID? = nil) async throws -> DesiredSoftware {
        var deployment = try await db.newestDeployment(group: group.id)
        if let device, let rollout = deployment?.rollout, !rollout.reaches(device, at: now) {
            deployment = try await db.previousDeployment(of: rollout, tenant: group.tenantId)
        }
        return desired(group: group, newest: deployment, releases: try await db.releases())
    }
}

/// Compares what a device should run with what it last reported, and says why they differ.
///
/// Reasons, in the order they are tried when the device is not in sync: `no_device_group`;
/// `awaiting_contact` (no report yet); `no_deliverable_system_software`; from the report's
/// state `rolled_back`, `download_failed` (download or `target_too_large`),
/// `security_version_too_low`, `verification_failed` (any other failure), `downloading`,
/// `awaiting_health_check`, `development_mode`, `system_software_held`; then `awaiting_contact` (the report predates
/// the deployment in force), `deferred`, `outside_maintenance_window`, `update_pending`.
/// Two are informational and may come with `inSync`: `no_deployment` (the group has none,
/// so apps are not managed) and `update_policy` (`no-app-updates` keeps the device's apps
/// although the newest deployment differs).
enum DeploymentStatus {
    static func evaluate(
        device: DeviceID, group: DeviceGroupDocument?, desired: DesiredSoftware?, releases: [SystemSoftwareRelease],
        stored: StoredUpdateStatus?, now: Date
    ) -> DeploymentStatusDocument {
        var status = DeploymentStatusDocument(
            deviceId: device, deviceGroupId: group?.id, shouldRun: desired, runs: stored?.report?.running,
            state: stored?.report?.state, inSync: false, reason: nil, detail: nil, lastContactAt: stored?.lastContactAt,
            reportedAt: stored?.reportedAt)
        guard group != nil, let desired else {
            status.reason = "no_device_group"
            status.detail = "the device is in no device group, so nothing is deployed to it"
            return status
        }
        guard let report = stored?.report else {
            status.reason = "awaiting_contact"
            status.detail = stored?.lastContactAt == nil
                ? "the device has not contacted the service since it was claimed"
                : "the device has not reported what it runs yet"
            return status
        }
        let running = report.running
        let runningRelease = running.systemSoftware.flatMap { current in releases.first { $0.version == current.version } }
        let systemInSync: Bool
        if let wanted = desired.systemSoftware {
            systemInSync = running.systemSoftware?.version == wanted.version
        } else {
            systemInSync = runningRelease != nil && runningRelease?.revokedAt == nil
        }
        let runningApps = Set(running.apps.map(\.imageId))
        let appsInSync = !desired.appsManaged || runningApps == Set(desired.apps.map(\.imageId))
        status.inSync = systemInSync && appsInSync

        if status.inSync {
            if desired.deploymentId == nil {
                status.reason = "no_deployment"
                status.detail = "the device group has no deployment; create one to manage its apps"
            } else if !desired.appsManaged, runningApps != Set(desired.apps.map(\.imageId)) {
                status.reason = "update_policy"
                status.detail = "the device group's update policy is no-app-updates: the device keeps its apps"
            }
            return status
        }
        if desired.systemSoftware == nil, !systemInSync {
            status.reason = "no_deliverable_system_software"
            status.detail = "no deliverable, unrevoked release on this group's feed: publish a fix with a higher security version"
            return status
        }
        switch report.state {
        case .rolledBack:
            status.reason = "rolled_back"
            status.detail = [report.reason, report.detail].compactMap { $0 }.joined(separator: ": ")
            return status
        case .failed:
            switch report.reason {
            case "download_failed", "target_too_large": status.reason = "download_failed"
            case "security_version_too_low": status.reason = "security_version_too_low"
            default: status.reason = "verification_failed"
            }
            status.detail = [report.reason, report.detail].compactMap { $0 }.joined(separator: ": ")
            return status
        case .downloading:
            status.reason = "downloading"
            return status
        case .installed:
            status.reason = "awaiting_health_check"
            status.detail = "installed and started; confirmed once the health check passes"
            return status
        case .pending where report.reason == "development_mode":
            status.reason = "development_mode"
            status.detail = "the device is in development mode: cloud app updates wait until `rampart device enable-cloud-test`"
            return status
        case .confirmed where report.reason == "system_software_held" && !systemInSync:
            status.reason = "system_software_held"
            status.detail = report.detail
            return status
        case .pending, .confirmed:
            break
        }
        if desired.appsManaged, !appsInSync, report.deploymentId != desired.deploymentId {
            status.reason = "awaiting_contact"
            status.detail = "the device last reported on \(report.deploymentId.map { "deployment \($0)" } ?? "no deployment"); it picks up the new one at its next check"
        } else if let until = report.deferredUntil, until > now {
            status.reason = "deferred"
            status.detail = "an app deferred the update until \(until.formatted(.iso8601))"
        } else if let window = desired.maintenanceWindow, !window.contains(now) {
            status.reason = "outside_maintenance_window"
            status.detail = "installs wait for the maintenance window, next opening \(window.nextOpening(after: now).formatted(.iso8601))"
        } else {
            status.reason = "update_pending"
            status.detail = "the device has not started installing yet"
        }
        return status
    }
}
