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
    case stagingCreated, payloadPartiallyWritten, payloadWritten, executableWritten, slotJSONWritten, stagingSynced, slotRenamed
    case trialArmed, reexecBeforeBoot, systemTrialSelected, trialBooted, healthCheckRunning, healthPassedBeforeCommit, committed
    case countersAdvanced
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
        /// A trial with new system software: the token of the start that boots it, set by
        /// ``SystemBoot`` as it spends the attempt and handed to that start in its environment.
        public var attempt: String?
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

    /// Ends the trial as failed, remembering what it tried so the next check reports it.
    public mutating func rollBack(reason: String, detail: String, attempted: [InstalledImage]) {
        lastRollback = Rollback(reason: reason, detail: detail, imageIds: attempted.map(\.imageId), deploymentId: trial?.deploymentId)
        trial = nil
    }
}

/// The A/B slots under `<state>/slots`: each holds the signed packages of one complete set
/// of software — the apps and, once the device installed one, the system software with its
/// executable unpacked beside it as `rampartd` — and a `slot.json` naming them. A slot is written whole beside the running one,
/// made durable, renamed into place, and only then armed in `boot.json` — the one atomic
/// switch. Nothing is ever installed into the running slot.
public struct SlotStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    var bootPath: String { "\(directory)/boot.json" }
    var slotsDirectory: String { "\(directory)/slots" }
    public func slotPath(_ slot: String) -> String { "\(slotsDirectory)/\(slot)" }
    public func packagePath(_ slot: String, _ image: ImageID) -> String { "\(slotPath(slot))/images/\(image).imagepackage" }
    /// The runtime executable of a slot that holds system software.
    public func executablePath(_ slot: String) -> String { "\(slotPath(slot))/rampartd" }

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

    /// The system software a slot holds, if any.
    public func systemImage(in slot: String) -> InstalledImage? {
        images(in: slot)?.first { $0.kind == .systemSoftware }
    }

    /// The slot's runtime executable, after its package verified against the pinned root as
    /// the service's system software and the unpacked file proved to be its payload byte for
    /// byte — nil when the slot has none or it does not verify.
    public func verifiedExecutable(in slot: String, root: Certificate, now: Date) async -> String? {
        guard let image = systemImage(in: slot),
            let bytes = FileManager.default.contents(atPath: packagePath(slot, image.imageId)),
            let package = try? ImagePackage(zipped: bytes), package.metadata.kind == .systemSoftware,
            (try? await ImagePackageVerifier(root: root).verify(package, tenant: nil, now: now)) != nil,
            FileManager.default.contents(atPath: executablePath(slot)) == package.payload,
            access(executablePath(slot), X_OK) == 0
        else { return nil }
        return executablePath(slot)
    }

    /// An installed app ready to run, after its package verified again against the pinned
    /// root for `tenant` — nil when it is missing or no longer verifies.
    public func verifiedApp(_ image: InstalledImage, in slot: String, root: Certificate, tenant: TenantID, now: Date) async -> AppDefinition? {
        guard let bytes = FileManager.default.contents(atPath: packagePath(slot, image.imageId)),
            let package = try? ImagePackage(zipped: bytes),
            (try? await ImagePackageVerifier(root: root).verify(package, tenant: tenant, now: now)) != nil
        else { return nil }
        return try? AppDefinition(package: package)
    }

    /// What goes into a new slot: a verified download, or an image the running slot holds
    /// (linked, not copied: installed files never change).
    public enum Staged: Sendable {
        case downloaded(InstalledImage, Data)
        case kept(InstalledImage, from: String)

        public var image: InstalledImage {
            switch self {
            case .downloaded(let image, _), .kept(let image, _): image
            }
        }
    }

    /// Writes `images` as the slot other than `active`, durably, replacing what was there;
    /// a system-software package's executable is unpacked beside it (mode 0700). Returns the
    /// slot's name. Does not arm it.
    public func stage(_ images: [Staged], besides active: String?) throws -> String {
        let slot = Self.other(active)
        let staging = "\(slotsDirectory)/\(slot).staging"
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.createDirectory(atPath: "\(staging)/images", withIntermediateDirectories: true)
        UpdateCheckpoint.stagingCreated.reach()
        for (index, entry) in images.enumerated() {
            let image = entry.image
            let package = "\(staging)/images/\(image.imageId).imagepackage"
            switch entry {
            case .downloaded(_, let bytes):
                try DurableFile.write(bytes, to: package, syncDirectory: false)
                if image.kind == .systemSoftware {
                    try DurableFile.write(try ImagePackage(zipped: bytes).payload, to: "\(staging)/rampartd", syncDirectory: false, mode: 0o700)
                    UpdateCheckpoint.executableWritten.reach()
                }
            case .kept(_, let source):
                try DurableFile.link(packagePath(source, image.imageId), to: package)
                if image.kind == .systemSoftware {
                    try DurableFile.link(executablePath(source), to: "\(staging)/rampartd")
                    UpdateCheckpoint.executableWritten.reach()
                }
            }
            if index == 0 { UpdateCheckpoint.payloadPartiallyWritten.reach() }
        }
        UpdateCheckpoint.payloadWritten.reach()
        try DurableFile.write(try JSONEncoder.rampart.encode(images.map(\.image)), to: "\(staging)/slot.json", syncDirectory: false)
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
    public static func write(_ data: Data, to path: String, syncDirectory sync: Bool = true, mode: mode_t = 0o600) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode)
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

    /// Gives the file at `source` a second name (same file system), or copies it durably
    /// where links are not possible.
    public static func link(_ source: String, to path: String) throws {
        if Foundation.link(source, path) == 0 { return }
        guard let data = FileManager.default.contents(atPath: source) else { throw failure("read", source) }
        let mode = ((try? FileManager.default.attributesOfItem(atPath: source))?[.posixPermissions] as? Int) ?? 0o600
        try write(data, to: path, syncDirectory: false, mode: mode_t(mode))
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
