public import Foundation

/// The client side of TUF's workflow (specification §5.3–5.6), without I/O: the caller
/// fetches bytes and feeds them in order — root versions, timestamp, snapshot, targets —
/// and each is accepted only if it follows from what is already trusted. The reference
/// time is fixed when the set is made (§5.1), so a slow update cannot outlive an expiry.
public struct TrustedMetadata: Sendable {
    /// Largest sizes accepted, before a byte is parsed.
    public struct Limits: Sendable {
        public var root = 64 << 10
        public var timestamp = 16 << 10
        public var snapshot = 64 << 10
        public var targets = 1 << 20
        /// At most this many root versions in one update (§5.3.3's bound).
        public var maxRootRotations = 32
        public init() {}
    }

    public let now: Date
    public let limits: Limits
    public private(set) var root: RootMetadata
    public private(set) var timestamp: TimestampMetadata?
    public private(set) var snapshot: SnapshotMetadata?
    public private(set) var targets: TargetsMetadata?

    /// Starts from a trusted root (the pinned or stored one): it must be signed by a
    /// threshold of its own root keys. Its expiry is checked by ``finishRootUpdates()``.
    public init(root bytes: Data, now: Date, limits: Limits = Limits()) throws {
        self.now = now
        self.limits = limits
        let envelope = try SignedEnvelope(parsing: bytes, limit: limits.root)
        let root = try RootMetadata(json: envelope.signed)
        try envelope.verify(root.roles[.root]!, keys: root.keys, name: .root)
        self.root = root
    }

    /// Root version N+1 (§5.3.4–5.3.9): signed by a threshold of the trusted root's root
    /// keys and of its own, with exactly the next version.
    public mutating func updateRoot(_ bytes: Data) throws {
        guard timestamp == nil else { throw TUFError("tuf_metadata_invalid", "root is updated before timestamp") }
        let envelope = try SignedEnvelope(parsing: bytes, limit: limits.root)
        let new = try RootMetadata(json: envelope.signed)
        try envelope.verify(root.roles[.root]!, keys: root.keys, name: .root)
        try envelope.verify(new.roles[.root]!, keys: new.keys, name: .root)
        guard new.common.version == root.common.version + 1 else {
            throw TUFError(
                "tuf_version_mismatch", "root version \(new.common.version) does not follow the trusted version \(root.common.version)")
        }
        root = new
    }

    /// After the last root (§5.3.10): it must not have expired — a frozen repository shows here.
    public func finishRootUpdates() throws {
        try Self.checkExpiry(root.common, .root, now: now)
    }

    /// Whether a new timestamp moved on or repeated the trusted one.
    public enum TimestampUpdate: Sendable { case new, unchanged }

    /// `timestamp.json` (§5.4): signed by the root's timestamp keys, not older than the
    /// trusted one, its snapshot version not lower, unexpired. An equal version means
    /// nothing changed: the trusted timestamp stays and the caller keeps its snapshot and
    /// targets (re-checked for expiry when loaded).
    @discardableResult
    public mutating func updateTimestamp(_ bytes: Data) throws -> TimestampUpdate {
        try finishRootUpdates()
        let envelope = try SignedEnvelope(parsing: bytes, limit: limits.timestamp)
        let new = try TimestampMetadata(json: envelope.signed)
        try envelope.verify(root.roles[.timestamp]!, keys: root.keys, name: .timestamp)
        if let trusted = timestamp {
            guard new.common.version >= trusted.common.version else {
                throw TUFError("tuf_version_rollback", "timestamp version \(new.common.version) is older than the trusted \(trusted.common.version)")
            }
            guard new.snapshot.version >= trusted.snapshot.version else {
                throw TUFError("tuf_version_rollback", "timestamp names snapshot \(new.snapshot.version), older than the trusted \(trusted.snapshot.version)")
            }
            if new.common.version == trusted.common.version {
                try Self.checkExpiry(trusted.common, .timestamp, now: now)
                return .unchanged
            }
        }
        try Self.checkExpiry(new.common, .timestamp, now: now)
        timestamp = new
        return .new
    }

    /// The largest snapshot the trusted timestamp allows.
    public var snapshotLimit: Int { timestamp?.snapshot.length ?? limits.snapshot }

    /// `N.snapshot.json` (§5.5): the bytes the timestamp describes (else mix-and-match),
    /// signed by the snapshot keys, the version the timestamp names, no targets rollback,
    /// unexpired.
    public mutating func updateSnapshot(_ bytes: Data) throws {
        guard let timestamp else { throw TUFError("tuf_metadata_invalid", "snapshot is updated after timestamp") }
        try Self.check(bytes, against: timestamp.snapshot, name: "snapshot", limit: limits.snapshot)
        let envelope = try SignedEnvelope(parsing: bytes, limit: limits.snapshot)
        let new = try SnapshotMetadata(json: envelope.signed)
        try envelope.verify(root.roles[.snapshot]!, keys: root.keys, name: .snapshot)
        guard new.common.version == timestamp.snapshot.version else {
            throw TUFError(
                "tuf_snapshot_mismatch", "snapshot version \(new.common.version) is not the \(timestamp.snapshot.version) the timestamp names")
        }
        if let trusted = snapshot, new.targets.version < trusted.targets.version {
            throw TUFError("tuf_version_rollback", "snapshot names targets \(new.targets.version), older than the trusted \(trusted.targets.version)")
        }
        try Self.checkExpiry(new.common, .snapshot, now: now)
        snapshot = new
        targets = nil
    }

    /// `N.targets.json` (§5.6): the bytes the snapshot describes, signed by the targets
    /// keys, the version the snapshot names, unexpired.
    public mutating func updateTargets(_ bytes: Data) throws {
        guard let snapshot else { throw TUFError("tuf_metadata_invalid", "targets is updated after snapshot") }
        try Self.check(bytes, against: snapshot.targets, name: "targets", limit: limits.targets)
        let envelope = try SignedEnvelope(parsing: bytes, limit: limits.targets)
        let new = try TargetsMetadata(json: envelope.signed)
        try envelope.verify(root.roles[.targets]!, keys: root.keys, name: .targets)
        guard new.common.version == snapshot.targets.version else {
            throw TUFError(
                "tuf_snapshot_mismatch", "targets version \(new.common.version) is not the \(snapshot.targets.version) the snapshot names")
        }
        try Self.checkExpiry(new.common, .targets, now: now)
        targets = new
    }

    /// The description of `path` in the trusted targets.
    public func target(_ path: String) throws -> TargetFile {
        guard let targets else { throw TUFError("tuf_metadata_invalid", "no trusted targets yet") }
        guard let file = targets.targets[path] else { throw TUFError("target_unknown", "\(path) is not a target of this repository") }
        return file
    }

    static func check(_ bytes: Data, against meta: MetaFile, name: String, limit: Int) throws {
        guard bytes.count <= limit else {
            throw TUFError("tuf_metadata_too_large", "\(name) is \(bytes.count) bytes; at most \(limit) are accepted")
        }
        if let length = meta.length, bytes.count != length {
            throw TUFError("tuf_snapshot_mismatch", "\(name) is not the \(length) bytes the metadata above it describes")
        }
        if let hash = meta.sha256, sha256Hex(bytes) != hash {
            throw TUFError("tuf_snapshot_mismatch", "\(name) is not the file the metadata above it describes (hash differs)")
        }
    }

    static func checkExpiry(_ common: CommonFields, _ role: RoleName, now: Date) throws {
        guard common.expires > now else {
            throw TUFError("tuf_metadata_expired", "\(role.rawValue) metadata expired at \(CommonFields.format(common.expires)): the repository may be frozen")
        }
    }
}
