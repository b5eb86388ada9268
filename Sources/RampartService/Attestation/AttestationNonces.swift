import Crypto
import Foundation
import RampartModel
import Synchronization

/// Challenge nonces that carry their own proof: the service writes nothing when it issues
/// one, and any node holding the same key can check it.
///
/// A nonce is 32 bytes, the size devices expect: when it expires (4 bytes, big-endian Unix
/// seconds), 8 random bytes, and the first 20 bytes of HMAC-SHA256 over those and the
/// device ID, under a key only the service has. So it cannot be forged, moved to another
/// device, or stretched. What it cannot carry is whether it was used: the attestation that
/// spends it records its MAC in `spent_nonces`, whose primary key lets it be spent once.
///
/// The key (``KeyCustody/attestationNonceKey()``) and the spent nonces:
/// - on PostgreSQL the key is derived from the key-encryption key every node has, so a
///   challenge from one node is answered at another, and spent nonces are rows of the
///   shared `spent_nonces`, so one spent at one node is spent at all;
/// - on SQLite, one process per file, the key is made at start and never stored, so a
///   restart forgets outstanding challenges (their devices ask again); spent nonces need
///   outlive neither and are kept in this process's memory, so no attestation writes its
///   nonce to the file.
struct AttestationNonces: Sendable {
    /// How long a challenge nonce may be answered.
    static let lifetime: TimeInterval = 60
    /// Spent nonces are kept this long past their expiry before they are swept: more than
    /// any clock difference between nodes, so no node takes a swept nonce as unexpired.
    static let spentRetention: TimeInterval = 300
    static let length = 32
    static let macLength = 20
    /// Where the MAC starts: after the expiry and the random bytes.
    static let macOffset = 4 + 8

    /// HMAC-SHA256 with the key already absorbed.
    private let keyed: KeyedHMAC
    private let sweep = SweepSchedule(interval: 60)
    /// The spent nonces, when this process keeps them (SQLite); nil: the database does.
    private let spentInMemory: SpentInMemory?

    init(key: SymmetricKey, keepSpentInMemory: Bool) {
        keyed = KeyedHMAC(key: key)
        spentInMemory = keepSpentInMemory ? SpentInMemory() : nil
    }

    /// A nonce for `device`, and when it expires (whole seconds).
    func issue(for device: DeviceID, now: Date) -> (nonce: Data, expiresAt: Date) {
        let expiry = UInt32((now.timeIntervalSince1970 + Self.lifetime).rounded(.up))
        var nonce: [UInt8] = []
        nonce.reserveCapacity(Self.length)
        withUnsafeBytes(of: expiry.bigEndian) { nonce += $0 }
        nonce += RandomPool.bytes(8)
        nonce += mac(nonce[...], device: device)
        return (Data(nonce), Date(timeIntervalSince1970: TimeInterval(expiry)))
    }

    private func mac(_ body: ArraySlice<UInt8>, device: DeviceID) -> [UInt8] {
        var hex = device.hex
        let code = body.withUnsafeBytes { body in
            hex.withUTF8 { hex in keyed.authenticationCode(body, UnsafeRawBufferPointer(hex)) }
        }
        return code.withUnsafeBytes { Array($0.prefix(Self.macLength)) }
    }

    /// A nonce this service issued to that device and that has not expired: what spending it takes.
    struct Fresh: Sendable {
        /// Its MAC, which no other nonce has.
        let mac: MAC
        let expiresAt: Date
        /// The MAC in hex: the key of `spent_nonces`.
        var tag: String { mac.bytes.hexString }
    }

    /// A nonce's MAC (``macLength`` bytes), held inline: nothing to allocate to keep or find one.
    struct MAC: Hashable, Sendable {
        private let head: UInt64
        private let middle: UInt64
        private let tail: UInt32

        init(_ bytes: some Collection<UInt8>) {
            precondition(bytes.count == AttestationNonces.macLength, "a nonce MAC is \(AttestationNonces.macLength) bytes")
            var words: (UInt64, UInt64, UInt32) = (0, 0, 0)
            withUnsafeMutableBytes(of: &words) { words in
                for (index, byte) in bytes.enumerated() { words[index] = byte }
            }
            (head, middle, tail) = words
        }

        var bytes: [UInt8] {
            withUnsafeBytes(of: (head, middle, tail)) { Array($0.prefix(AttestationNonces.macLength)) }
        }
    }

    /// Checks that `nonce` is one this service issued to `device` and that it has not
    /// expired; throws `nonce_unknown` or `nonce_expired` otherwise. Whether it was spent
    /// is the issuing transaction's to find out.
    func check(_ nonce: Data, device: DeviceID, now: Date) throws -> Fresh {
        let bytes = Array(nonce)
        guard bytes.count == Self.length,
            Self.constantTimeEqual(mac(bytes[..<Self.macOffset], device: device), bytes[Self.macOffset...])
        else {
            throw AttestationError.refused("nonce_unknown", "this nonce was not issued to this device; ask for a new challenge")
        }
        let expiry = bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(expiry))
        guard now < expiresAt else {
            throw AttestationError.refused(
                "nonce_expired", "this nonce expired (\(Int(Self.lifetime)) s); ask for a new challenge")
        }
        return Fresh(mac: MAC(bytes[Self.macOffset...]), expiresAt: expiresAt)
    }

    /// Compares two MACs without stopping at the first difference.
    static func constantTimeEqual(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Where this process keeps spent nonces, spends `nonce` at once, before its evidence
    /// is looked at: whatever the evidence, the nonce is gone. Throws `nonce_replayed` when
    /// it was spent already. Where the database keeps them, does nothing: the issuing
    /// transaction spends it (``spend(_:db:now:)``), and so does a refusal
    /// (``spendAfterRefusal(_:database:now:)``).
    func spendUpfront(_ nonce: Fresh, now: Date) throws {
        guard let spentInMemory else { return }
        guard spentInMemory.spend(nonce, sweepingBefore: sweep.isDue(now: now) ? now : nil) else { throw Self.replayed }
    }

    /// Records `nonce` as spent in `db`, within the caller's transaction, and sweeps away
    /// long-expired ones at most once a minute. False when it was spent already. Where this
    /// process keeps spent nonces, ``spendUpfront(_:now:)`` spent it: true.
    func spend(_ nonce: Fresh, db: any SQLExecutor, now: Date) async throws -> Bool {
        guard spentInMemory == nil else { return true }
        guard try await db.spendNonce(nonce) else { return false }
        if sweep.isDue(now: now) {
            try await db.sweepSpentNonces(expiredBefore: now.addingTimeInterval(-Self.spentRetention))
        }
        return true
    }

    /// After a refusal, which rolled the issuing transaction back, spends `nonce` in a
    /// transaction of its own where the database keeps spent nonces; where this process
    /// keeps them, ``spendUpfront(_:now:)`` spent it already and nothing is opened. False
    /// when it had been spent before.
    func spendAfterRefusal(_ nonce: Fresh, database: any Database, now: Date) async throws -> Bool {
        guard spentInMemory == nil else { return true }
        return try await database.transaction { db in try await spend(nonce, db: db, now: now) }
    }

    static let replayed = AttestationError.refused("nonce_replayed", "this nonce was used already; ask for a new challenge")
}

/// HMAC-SHA256 (RFC 2104) under one key, its inner and outer key blocks hashed once.
///
/// swift-crypto's `HMAC` keys itself anew for every code (two SHA-256 compressions) and,
/// being generic over `DataProtocol`, looks up type metadata at run time on each update:
/// together ≈ 3 µs of each nonce, issued and checked. This hashes through `SHA256`'s
/// byte-buffer API from two prepared states. A test holds it to swift-crypto's `HMAC`.
///
/// `@unchecked Sendable`: `inner` and `outer` are never mutated; each code works on copies,
/// which copy the hash state on their first update (swift-crypto's hashers are copy-on-write).
final class KeyedHMAC: @unchecked Sendable {
    private let inner: SHA256
    private let outer: SHA256

    init(key: SymmetricKey) {
        var block = key.withUnsafeBytes { Array($0) }
        if block.count > SHA256.blockByteCount { block = Array(SHA256.hash(data: block)) }
        block += [UInt8](repeating: 0, count: SHA256.blockByteCount - block.count)
        var inner = SHA256()
        inner.update(data: block.map { $0 ^ 0x36 })
        var outer = SHA256()
        outer.update(data: block.map { $0 ^ 0x5c })
        self.inner = inner
        self.outer = outer
    }

    /// The code of `first` followed by `second` (two parameters, not variadic: a variadic
    /// call allocates an array).
    func authenticationCode(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> SHA256.Digest {
        var hash = inner
        hash.update(bufferPointer: first)
        hash.update(bufferPointer: second)
        let innerDigest = hash.finalize()
        var result = outer
        innerDigest.withUnsafeBytes { result.update(bufferPointer: $0) }
        return result.finalize()
    }
}

/// Spent nonces by MAC, in groups by the minute they expire in: a nonce's expiry is part of
/// what its MAC covers, so it can only ever be in its own minute's group, and a sweep drops
/// whole groups (those of minutes before the sweep's), never one that may hold an
/// unexpired nonce.
final class SpentInMemory: Sendable {
    private let spent = Mutex<[Int64: Set<AttestationNonces.MAC>]>([:])

    func spend(_ nonce: AttestationNonces.Fresh, sweepingBefore date: Date?) -> Bool {
        spent.withLock { spent in
            if let date {
                let current = Self.minute(date)
                spent = spent.filter { $0.key >= current }
            }
            return spent[Self.minute(nonce.expiresAt), default: []].insert(nonce.mac).inserted
        }
    }

    var count: Int { spent.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    private static func minute(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 60).rounded(.down)) }
}

/// At most once per `interval`, across every task of the process.
final class SweepSchedule: Sendable {
    private let interval: TimeInterval
    private let next = Mutex(Date.distantPast)

    init(interval: TimeInterval) { self.interval = interval }

    func isDue(now: Date) -> Bool {
        next.withLock { next in
            guard now >= next else { return false }
            next = now.addingTimeInterval(interval)
            return true
        }
    }
}
