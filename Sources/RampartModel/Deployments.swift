public import Foundation

/// One image as a deployment or a desired state names it.
public struct DeployedImage: Codable, Sendable, Equatable {
    public var imageId: ImageID
    public var componentId: ComponentID
    public var name: String
    public var version: String
    public var securityVersion: Int

    public init(imageId: ImageID, componentId: ComponentID, name: String, version: String, securityVersion: Int) {
        self.imageId = imageId
        self.componentId = componentId
        self.name = name
        self.version = version
        self.securityVersion = securityVersion
    }
}

/// The app images a device group should run from `createdAt` on. The newest deployment of
/// a group is the one in force; older ones are history.
public struct DeploymentDocument: Codable, Sendable, Equatable {
    public var id: DeploymentID
    public var tenantId: TenantID
    public var deviceGroupId: DeviceGroupID
    /// One per component; empty means "no apps".
    public var images: [DeployedImage]
    public var createdAt: Date
    public var createdBy: String
    /// Set on a staged deployment: its canary devices and where the rollout stands.
    public var rollout: Rollout?

    public init(
        id: DeploymentID, tenantId: TenantID, deviceGroupId: DeviceGroupID, images: [DeployedImage], createdAt: Date,
        createdBy: String, rollout: Rollout? = nil
    ) {
        self.rollout = rollout
        self.id = id
        self.tenantId = tenantId
        self.deviceGroupId = deviceGroupId
        self.images = images
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// `POST /v1/tenants/{t}/device-groups/{g}/deployments`.
public struct CreateDeploymentRequest: APIRequestBody {
    public static let fields: Set<String> = ["imageIds", "rollout"]
    public var imageIds: [ImageID]
    /// Stage it: a canary share of the group first, the rest after the soak time.
    public var rollout: RolloutRequest?
    public init(imageIds: [ImageID], rollout: RolloutRequest? = nil) {
        self.imageIds = imageIds
        self.rollout = rollout
    }
}

/// How to stage a deployment: exactly one of `canaryPercent` and `canaryDevices`.
public struct RolloutRequest: Codable, Sendable, Equatable {
    /// 1–99: this share of the group's devices (at least one), picked by a hash of the
    /// deployment and device IDs.
    public var canaryPercent: Int?
    /// Or these devices of the group.
    public var canaryDevices: [DeviceID]?
    /// How long the canary stage lasts before everyone gets it (1–10080; 60 by default).
    public var soakMinutes: Int?
    /// The rollout pauses itself when the new images' failure rate on the canary exceeds the
    /// previous images' by more than this many devices per 1,000 (1–1000; 50 by default).
    public var haltThresholdPerThousand: Int?

    public init(canaryPercent: Int? = nil, canaryDevices: [DeviceID]? = nil, soakMinutes: Int? = nil, haltThresholdPerThousand: Int? = nil) {
        self.canaryPercent = canaryPercent
        self.canaryDevices = canaryDevices
        self.soakMinutes = soakMinutes
        self.haltThresholdPerThousand = haltThresholdPerThousand
    }

    public static let defaultSoakMinutes = 60
    public static let defaultHaltThreshold = 50
}

/// Where a staged deployment stands. While `canary` or `paused`, only the canary devices
/// run it; the others keep the previous deployment's apps.
public struct Rollout: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case canary, paused, complete
    }

    public var state: State
    public var canaryDevices: [DeviceID]
    /// What the devices outside the canary run meanwhile (nil: no apps).
    public var previousDeploymentId: DeploymentID?
    public var soakUntil: Date
    public var haltThresholdPerThousand: Int
    public var pausedAt: Date?
    public var pauseReason: String?
    /// `rampart-server` when the rollout halted itself, else the user who paused it.
    public var pausedBy: String?
    public var resumedAt: Date?

    public init(
        state: State, canaryDevices: [DeviceID], previousDeploymentId: DeploymentID?, soakUntil: Date, haltThresholdPerThousand: Int,
        pausedAt: Date? = nil, pauseReason: String? = nil, pausedBy: String? = nil, resumedAt: Date? = nil
    ) {
        self.state = state
        self.canaryDevices = canaryDevices
        self.previousDeploymentId = previousDeploymentId
        self.soakUntil = soakUntil
        self.haltThresholdPerThousand = haltThresholdPerThousand
        self.pausedAt = pausedAt
        self.pauseReason = pauseReason
        self.pausedBy = pausedBy
        self.resumedAt = resumedAt
    }

    /// The state at `now`: paused while paused; complete once the soak time is over.
    public func state(at now: Date) -> State {
        if pausedAt != nil { return .paused }
        return now >= soakUntil ? .complete : .canary
    }

    /// Whether `device` runs the new images at `now`.
    public func reaches(_ device: DeviceID, at now: Date) -> Bool {
        state(at: now) == .complete || canaryDevices.contains(device)
    }
}

/// `deployment pause`: why (recorded with the pause).
public struct PauseDeploymentRequest: APIRequestBody {
    public static let fields: Set<String> = ["reason"]
    public var reason: String?
    public init(reason: String? = nil) { self.reason = reason }
}

/// When a device group's devices may install: a daily window in UTC. Downloads happen any
/// time; installs wait for the window.
public struct MaintenanceWindow: Codable, Sendable, Equatable {
    /// `HH:MM`, 24-hour, UTC.
    public var startUTC: String
    /// 1…1440.
    public var durationMinutes: Int

    public init(startUTC: String, durationMinutes: Int) {
        self.startUTC = startUTC
        self.durationMinutes = durationMinutes
    }

    /// Minutes after midnight UTC, when `startUTC` is a valid `HH:MM`.
    public var startMinute: Int? {
        let parts = startUTC.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        return hour * 60 + minute
    }

    public var isValid: Bool { startMinute != nil && (1...1440).contains(durationMinutes) }

    /// Whether `date` falls inside the window (which may run past midnight).
    public func contains(_ date: Date) -> Bool {
        guard let start = startMinute else { return false }
        let minute = Self.minuteOfDay(date)
        return (minute - start + 1440) % 1440 < durationMinutes
    }

    /// The next time the window opens at or after `date` (`date` itself when inside).
    public func nextOpening(after date: Date) -> Date {
        guard let start = startMinute, !contains(date) else { return date }
        let minute = Self.minuteOfDay(date)
        let wait = (start - minute + 1440) % 1440
        let floored = date.timeIntervalSince1970 - date.timeIntervalSince1970.truncatingRemainder(dividingBy: 60)
        return Date(timeIntervalSince1970: floored + Double(wait * 60))
    }

    static func minuteOfDay(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 / 60).rounded(.down)) % 1440
    }
}

/// Where a device is with the deployment it should run.
public enum DeviceUpdateState: String, Codable, Sendable, CaseIterable {
    /// The device has not started on what it should run.
    case pending
    case downloading
    /// Installed into the inactive slot and switched to; the health check is running.
    case installed
    /// The new images started and passed the health check. Only this is success.
    case confirmed
    /// Refused or broken before the switch (download, verification, anti-rollback); retried.
    case failed
    /// Switched, found unhealthy, switched back.
    case rolledBack = "rolled-back"
}

/// What a device runs.
public struct RunningSoftware: Codable, Sendable, Equatable {
    public struct SystemSoftware: Codable, Sendable, Equatable {
        public var version: String
        public var imageId: ImageID?
        public init(version: String, imageId: ImageID? = nil) {
            self.version = version
            self.imageId = imageId
        }
    }

    public struct App: Codable, Sendable, Equatable {
        public var componentId: ComponentID
        public var imageId: ImageID
        public var version: String
        public init(componentId: ComponentID, imageId: ImageID, version: String) {
            self.componentId = componentId
            self.imageId = imageId
            self.version = version
        }
    }

    public var systemSoftware: SystemSoftware?
    public var apps: [App]

    public init(systemSoftware: SystemSoftware?, apps: [App]) {
        self.systemSoftware = systemSoftware
        self.apps = apps
    }
}

/// `POST /v1/device/update-state`: a device's report on its update. Reports carry a
/// sequence the device increases; the service keeps the highest and refuses lower ones.
public struct DeviceUpdateReport: APIRequestBody {
    public static let fields: Set<String> = ["sequence", "deploymentId", "state", "reason", "detail", "running", "deferredUntil"]
    /// The reasons a device may give for `failed` and `rolled-back`.
    public static let failureReasons: Set<String> = [
        "download_failed", "verification_failed", "security_version_too_low", "target_too_large",
        "start_failed", "crashed_in_health_window", "attestation_refused", "interrupted",
    ]

    public var sequence: Int
    public var deploymentId: DeploymentID?
    public var state: DeviceUpdateState
    public var reason: String?
    public var detail: String?
    public var running: RunningSoftware
    public var deferredUntil: Date?

    public init(
        sequence: Int, deploymentId: DeploymentID?, state: DeviceUpdateState, reason: String? = nil, detail: String? = nil,
        running: RunningSoftware, deferredUntil: Date? = nil
    ) {
        self.sequence = sequence
        self.deploymentId = deploymentId
        self.state = state
        self.reason = reason
        self.detail = detail
        self.running = running
        self.deferredUntil = deferredUntil
    }
}

/// `GET /v1/device/update-check`: what the device should do on this contact.
public struct UpdateCheckResponse: Codable, Sendable, Equatable {
    public var tenantId: TenantID
    public var deviceGroupId: DeviceGroupID?
    /// The deployment in force for the device's group, if any.
    public var deploymentId: DeploymentID?
    /// An operator asked the group to check for updates since the device's last report.
    public var checkNow: Bool
    /// Seconds until the device should contact the service again.
    public var nextContactAfter: Int
    /// The group's TUF repository (`…/metadata/`, `…/targets/` below it), when in a group.
    public var repositoryPath: String?

    public init(
        tenantId: TenantID, deviceGroupId: DeviceGroupID?, deploymentId: DeploymentID?, checkNow: Bool, nextContactAfter: Int,
        repositoryPath: String? = nil
    ) {
        self.repositoryPath = repositoryPath
        self.tenantId = tenantId
        self.deviceGroupId = deviceGroupId
        self.deploymentId = deploymentId
        self.checkNow = checkNow
        self.nextContactAfter = nextContactAfter
    }
}

/// What a device of a group should run: the system software of its feed and, unless the
/// group's policy keeps apps as they are, the newest deployment's apps.
public struct DesiredSoftware: Codable, Sendable, Equatable {
    /// The newest deliverable, unrevoked release on the group's feed(s); nil when there is none.
    public var systemSoftware: SystemSoftwareRelease?
    public var deploymentId: DeploymentID?
    public var apps: [DeployedImage]
    /// False under the `no-app-updates` policy: the device keeps the apps it has.
    public var appsManaged: Bool
    public var maintenanceWindow: MaintenanceWindow?

    public init(
        systemSoftware: SystemSoftwareRelease?, deploymentId: DeploymentID?, apps: [DeployedImage], appsManaged: Bool,
        maintenanceWindow: MaintenanceWindow?
    ) {
        self.systemSoftware = systemSoftware
        self.deploymentId = deploymentId
        self.apps = apps
        self.appsManaged = appsManaged
        self.maintenanceWindow = maintenanceWindow
    }
}

/// `GET …/devices/{d}/deployment-status`: what the device should run, what it runs, and —
/// when they differ — one reason.
public struct DeploymentStatusDocument: Codable, Sendable, Equatable {
    public var deviceId: DeviceID
    public var deviceGroupId: DeviceGroupID?
    public var shouldRun: DesiredSoftware?
    /// From the device's last report; nil before its first.
    public var runs: RunningSoftware?
    public var state: DeviceUpdateState?
    public var inSync: Bool
    /// Why the device does not run what it should (or, under `no-app-updates`, why it does
    /// not run the newest deployment): a stable code.
    public var reason: String?
    public var detail: String?
    public var lastContactAt: Date?
    public var reportedAt: Date?

    public init(
        deviceId: DeviceID, deviceGroupId: DeviceGroupID?, shouldRun: DesiredSoftware?, runs: RunningSoftware?,
        state: DeviceUpdateState?, inSync: Bool, reason: String?, detail: String?, lastContactAt: Date?, reportedAt: Date?
    ) {
        self.deviceId = deviceId
        self.deviceGroupId = deviceGroupId
        self.shouldRun = shouldRun
        self.runs = runs
        self.state = state
        self.inSync = inSync
        self.reason = reason
        self.detail = detail
        self.lastContactAt = lastContactAt
        self.reportedAt = reportedAt
    }
}
