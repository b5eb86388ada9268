public import Foundation
public import RampartModel
import RampartImage
public import X509

/// The points of an install where a power loss is rehearsed. `RAMPARTD_KILL_AT=<name>`
/// makes the runtime SIGKILL itself there — the state an external kill or a power cut at
/// that instant leaves.
public enum UpdateCheckpoint: String, CaseIterable, Sendable {
    case checkStarted, rootUpdated, timestampPersisted, snapshotPersisted, targetsPersisted
    case downloadStarted, downloadPartial, downloadComplete, packageVerified
    case stagingCreated, payloadPartiallyWritten, payloadWritten, slotJSONWritten, stagingSynced, slotRenamed, trialArmed
    case reexecBeforeBoot, trialBooted, healthCheckRunning, healthPassedBeforeCommit, committed, countersAdvanced
    case confirmedBeforeReport, oldSlotCleanup

    public func reach() {
        guard ProcessInfo.processInfo.environment["RAMPARTD_KILL_AT"] == rawValue else { return }
        kill(getpid(), SIGKILL)
    }
}

/// One image installed in a slot.
public struct InstalledImage: Codable, Sendable, Equatable {
    public var imageId: ImageID
    public var componentId: ComponentID
    public var kind: ImageKind
    public var version: String
    public var securityVersion: Int
    /// SHA-256 of the signed package file.
    public var sha256: String

    public init(imageId: ImageID, componentId: ComponentID, kind: ImageKind, version: String, securityVersion: Int, sha256: String) {
        self.imageId = imageId
        self.componentId = componentId
        self.kind = kind
        self.version = version
        self.securityVersion = securityVersion
        self.sha256 = sha256
    }
}

/// `<state>/boot.json`: which slot runs, and an install on trial.
public struct BootRecord: Codable, Sendable, Equatable {
    public struct Trial: Codable, Sendable, Equatable {
        public var slot: String
        /// Boots left before the trial counts as failed (a start that never reached its health verdict).
        public var attemptsLeft: Int
        public var deploymentId: DeploymentID?
    }

    public struct Rollback: Codable, Sendable, Equatable {
        public var reason: String
        public var detail: String?
        public var imageIds: [ImageID]
        public var deploymentId: DeploymentID?
    }

    public var schemaVersion = 1
    /// "a" or "b"; nil in the factory state (no apps).
    public var active: String?
    public var trial: Trial?
    public var lastRollback: Rollback?

    public init() {}
}

/// The A/B slots under `<state>/slots`: each holds the signed packages of one complete set
/// of apps and a `slot.json` naming them. A slot is written whole beside the running one,
/// made durable, renamed into place, and only then armed in `boot.json` — the one atomic
/// switch. Nothing is ever installed into the running slot.
public struct SlotStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    var bootPath: String { "\(directory)/boot.json" }
    var slotsDirectory: String { "\(directory)/slots" }
    public func slotPath(_ slot: String) -> String { "\(slotsDirectory)/\(slot)" }
    public func packagePath(_ slot: String, _ image: ImageID) -> String { "\(slotPath(slot))/images/\(image).imagepackage" }

    public func boot() throws -> BootRecord {
        guard let data = FileManager.default.contents(atPath: bootPath) else { return BootRecord() }
        do {
            return try JSONDecoder.rampart.decode(BootRecord.self, from: data)
        } catch {
            throw DeviceError(code: "boot_record_unreadable", message: "\(bootPath) is damaged: \(error)")
        }
    }

    public func write(_ record: BootRecord) throws {
        try DurableFile.write(try JSONEncoder.rampart.encode(record), to: bootPath)
    }

    /// The images of a slot, nil when it has no complete `slot.json`.
    public func images(in slot: String) -> [InstalledImage]? {
        guard let data = FileManager.default.contents(atPath: "\(slotPath(slot))/slot.json") else { return nil }
        return try? JSONDecoder.rampart.decode([InstalledImage].self, from: data)
    }

    public static func other(_ slot: String?) -> String { slot == "a" ? "b" : "a" }

    /// An installed app ready to run, after its package verified again against the pinned
    /// root for `tenant` — nil when it is missing or no longer verifies.
    public func verifiedApp(_ image: InstalledImage, in slot: String, root: Certificate, tenant: TenantID, now: Date) async -> AppDefinition? {
        guard let bytes = FileManager.default.contents(atPath: packagePath(slot, image.imageId)),
            let package = try? ImagePackage(zipped: bytes),
            (try? await ImagePackageVerifier(root: root).verify(package, tenant: tenant, now: now)) != nil
        else { return nil }
        return try? AppDefinition(package: package)
    }

    /// Writes `images` (with their package bytes) as the slot other than `active`, durably,
    /// replacing what was there. Returns the slot's name. Does not arm it.
    public func stage(_ images: [(InstalledImage, Data)], besides active: String?) throws -> String {
        let slot = Self.other(active)
        let staging = "\(slotsDirectory)/\(slot).staging"
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.createDirectory(atPath: "\(staging)/images", withIntermediateDirectories: true)
        UpdateCheckpoint.stagingCreated.reach()
        for (index, (image, bytes)) in images.enumerated() {
            try DurableFile.write(bytes, to: "\(staging)/images/\(image.imageId).imagepackage", syncDirectory: false)
            if index == 0 { UpdateCheckpoint.payloadPartiallyWritten.reach() }
        }
        UpdateCheckpoint.payloadWritten.reach()
        try DurableFile.write(try JSONEncoder.rampart.encode(images.map(\.0)), to: "\(staging)/slot.json", syncDirectory: false)
        UpdateCheckpoint.slotJSONWritten.reach()
        try DurableFile.syncDirectory("\(staging)/images")
        try DurableFile.syncDirectory(staging)
        UpdateCheckpoint.stagingSynced.reach()
        let target = slotPath(slot)
        if FileManager.default.fileExists(atPath: target) {
            let trash = "\(slotsDirectory)/.trash-\(UUID().uuidString)"
            guard rename(target, trash) == 0 else { throw DurableFile.failure("move aside", target) }
        }
        guard rename(staging, target) == 0 else { throw DurableFile.failure("rename", staging) }
        try DurableFile.syncDirectory(slotsDirectory)
        UpdateCheckpoint.slotRenamed.reach()
        return slot
    }

    /// Deletes what an interrupted install left: staging directories and moved-aside slots.
    public func removeLeftovers() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: slotsDirectory) else { return }
        for entry in entries where entry.hasSuffix(".staging") || entry.hasPrefix(".trash-") {
            try? FileManager.default.removeItem(atPath: "\(slotsDirectory)/\(entry)")
        }
    }
}

/// Files made durable: written to a temporary name, flushed, renamed over the old one, and
/// the directory flushed, so after a power loss the name holds the old bytes or the new.
public enum DurableFile {
    public static func write(_ data: Data, to path: String, syncDirectory sync: Bool = true) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw failure("create", temporary) }
        var written = 0
        let ok = data.withUnsafeBytes { buffer -> Bool in
            while written < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n <= 0 { return false }
                written += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok else { throw failure("write", temporary) }
        guard rename(temporary, path) == 0 else { throw failure("rename", temporary) }
        if sync { try syncDirectory((path as NSString).deletingLastPathComponent) }
    }

    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("sync", path) }
    }

    static func failure(_ what: String, _ path: String) -> DeviceError {
        DeviceError(code: "storage_failed", message: "cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}
