import Foundation
import RampartModel
@testable import RampartService
import Testing

/// Every reason `show-deployment-status` can give, from fabricated reports.
@Suite struct DeploymentStatusTests {
    let device = DeviceID(String(repeating: "ab", count: 32))!
    let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18 11:06:40 UTC
    let group = DeviceGroupDocument(
        id: .random(), tenantId: .random(), productId: .random(), name: "Production", description: "", osFeed: .retail,
        updatePolicy: .all, createdAt: Date(timeIntervalSince1970: 0))
    let v1 = SystemSoftwareRelease(
        version: "1.0.0", measurement: String(repeating: "1", count: 64), feed: .retail, securityVersion: 1,
        publishedAt: Date(timeIntervalSince1970: 100), imageId: .random())
    let v2 = SystemSoftwareRelease(
        version: "2.0.0", measurement: String(repeating: "2", count: 64), feed: .retail, securityVersion: 2,
        publishedAt: Date(timeIntervalSince1970: 200), imageId: .random())
    let app = DeployedImage(imageId: .random(), componentId: .random(), name: "telemetry", version: "1.0.0", securityVersion: 1)
    let deployment = DeploymentID.random()

    var desired: DesiredSoftware {
        DesiredSoftware(systemSoftware: v2, deploymentId: deployment, apps: [app], appsManaged: true, maintenanceWindow: nil)
    }

    func running(_ release: SystemSoftwareRelease, apps: [DeployedImage]) -> RunningSoftware {
        RunningSoftware(
            systemSoftware: .init(version: release.version, imageId: release.imageId),
            apps: apps.map { .init(componentId: $0.componentId, imageId: $0.imageId, version: $0.version) })
    }

    func reason(
        _ state: DeviceUpdateState, _ why: String? = nil, runs: RunningSoftware? = nil, deployment: DeploymentID?? = nil,
        desired: DesiredSoftware? = nil, releases: [SystemSoftwareRelease]? = nil, deferredUntil: Date? = nil
    ) -> (String?, Bool) {
        let report = DeviceUpdateReport(
            sequence: 1, deploymentId: deployment ?? self.deployment, state: state, reason: why,
            running: runs ?? running(v1, apps: []), deferredUntil: deferredUntil)
        let status = DeploymentStatus.evaluate(
            device: device, group: group, desired: desired ?? self.desired, releases: releases ?? [v1, v2],
            stored: StoredUpdateStatus(report: report, reportedAt: now, lastContactAt: now), now: now)
        return (status.reason, status.inSync)
    }

    @Test func everyReasonFromItsReport() {
        #expect(reason(.confirmed, runs: running(v2, apps: [app])) == (nil, true))
        #expect(reason(.rolledBack, "start_failed") == ("rolled_back", false))
        #expect(reason(.failed, "download_failed") == ("download_failed", false))
        #expect(reason(.failed, "target_too_large") == ("download_failed", false))
        #expect(reason(.failed, "security_version_too_low") == ("security_version_too_low", false))
        #expect(reason(.failed, "verification_failed") == ("verification_failed", false))
        #expect(reason(.downloading) == ("downloading", false))
        #expect(reason(.installed) == ("awaiting_health_check", false))
        #expect(reason(.pending, "development_mode") == ("development_mode", false))
        // A runtime with a separate monitor keeps its release (v1, not the desired v2): said so.
        #expect(reason(.confirmed, "system_software_held", runs: running(v1, apps: [app])) == ("system_software_held", false))
        #expect(reason(.pending, deployment: .some(.random())) == ("awaiting_contact", false))
        #expect(reason(.pending, deferredUntil: now.addingTimeInterval(3600)) == ("deferred", false))
        #expect(reason(.pending, deferredUntil: now.addingTimeInterval(-1)) == ("update_pending", false))
        var windowed = desired
        windowed.maintenanceWindow = MaintenanceWindow(startUTC: "02:00", durationMinutes: 120)
        #expect(reason(.pending, desired: windowed) == ("outside_maintenance_window", false))
        windowed.maintenanceWindow = MaintenanceWindow(startUTC: "11:00", durationMinutes: 30)
        #expect(reason(.pending, desired: windowed) == ("update_pending", false))

        // No deliverable system software, and the device's release was revoked.
        var revoked = v1
        revoked.revokedAt = now
        var nothing = desired
        nothing.systemSoftware = nil
        #expect(reason(.pending, desired: nothing, releases: [revoked]) == ("no_deliverable_system_software", false))

        // Informational, in sync: no deployment; no-app-updates with a deployment the device does not run.
        let noDeployment = DesiredSoftware(systemSoftware: v2, deploymentId: nil, apps: [], appsManaged: false, maintenanceWindow: nil)
        #expect(reason(.confirmed, runs: running(v2, apps: []), desired: noDeployment) == ("no_deployment", true))
        var policy = desired
        policy.appsManaged = false
        #expect(reason(.confirmed, runs: running(v2, apps: []), desired: policy) == ("update_policy", true))
    }

    @Test func beforeAnyReportAndOutsideAnyGroup() {
        let silent = DeploymentStatus.evaluate(
            device: device, group: group, desired: desired, releases: [v1, v2], stored: nil, now: now)
        #expect(silent.reason == "awaiting_contact" && !silent.inSync)
        let contacted = DeploymentStatus.evaluate(
            device: device, group: group, desired: desired, releases: [v1, v2],
            stored: StoredUpdateStatus(report: nil, reportedAt: nil, lastContactAt: now), now: now)
        #expect(contacted.reason == "awaiting_contact" && contacted.detail?.contains("not reported") == true)
        let loose = DeploymentStatus.evaluate(device: device, group: nil, desired: nil, releases: [], stored: nil, now: now)
        #expect(loose.reason == "no_device_group")
    }

    @Test func theNewestDeliverableReleaseOfTheGroupsFeedsIsDesired() {
        var eval = v2
        eval.version = "3.0.0-rc1"
        eval.feed = .retailEval
        eval.securityVersion = 3
        var referenceOnly = v2
        referenceOnly.version = "4.0.0"
        referenceOnly.securityVersion = 4
        referenceOnly.imageId = nil
        var revoked = v2
        revoked.version = "2.0.1"
        revoked.securityVersion = 5
        revoked.revokedAt = now
        let releases = [v1, v2, eval, referenceOnly, revoked]
        #expect(DesiredState.systemSoftware(for: .retail, among: releases)?.version == "2.0.0")
        #expect(DesiredState.systemSoftware(for: .retailEval, among: releases)?.version == "3.0.0-rc1")
        #expect(DesiredState.systemSoftware(for: .retail, among: [referenceOnly]) == nil)
    }

    @Test func maintenanceWindowsWrapAroundMidnight() {
        let window = MaintenanceWindow(startUTC: "23:00", durationMinutes: 120)
        let day = Date(timeIntervalSince1970: 1_795_046_400)  // 2026-11-19 00:00 UTC
        #expect(window.contains(day.addingTimeInterval(30 * 60)))
        #expect(window.contains(day.addingTimeInterval(-30 * 60)))
        #expect(!window.contains(day.addingTimeInterval(60 * 60)))
        #expect(window.nextOpening(after: day.addingTimeInterval(60 * 60)) == day.addingTimeInterval(23 * 3600))
        #expect(!MaintenanceWindow(startUTC: "+1:00", durationMinutes: 60).isValid)
        #expect(!MaintenanceWindow(startUTC: "24:00", durationMinutes: 60).isValid)
        #expect(!MaintenanceWindow(startUTC: "02:00", durationMinutes: 0).isValid)
    }
}
