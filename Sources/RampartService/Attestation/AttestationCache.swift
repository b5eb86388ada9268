import Crypto
import Synchronization
import X509

/// What attestation has already established from certificates it has seen, keyed by the
/// SHA-256 of their exact text, so the same bytes are not parsed or verified twice:
///
/// - a registered identity certificate → its P-256 key and whether it certifies keys;
/// - an Alias certificate (at most 4 KiB of text), with the identity it was checked
///   against → its key and certified runtime digest and version, stored only once it is
///   known to be signed by that identity and has itself signed good evidence.
///
/// A DICE device makes one Alias certificate per launch, so its renewals show the bytes of
/// the launch's first attestation, and the cache spares the service one of the three P-256
/// operations an attestation costs — while the certificate is among the last 32–64 thousand
/// stored; a renewal storm, every device's first attestation of its launch, cannot hit it.
/// Entries depend on the bytes alone, never on the device or the time, so they cannot go
/// stale; what the evidence itself says (its signature, the measurement log, the software
/// version) is checked on every attestation.
final class AttestationCache: Sendable {
    /// Keys are held as X509's `Certificate.PublicKey` (Sendable); one known to be P-256
    /// unwraps to swift-crypto's key without copying.
    struct Identity: Sendable {
        let key: Certificate.PublicKey
        let certifiesKeys: Bool
    }

    /// An Alias certificate's key and what its DiceTcbInfo certifies (nil: it has none,
    /// which is refused after the evidence signature is checked).
    struct Alias: Sendable {
        let key: Certificate.PublicKey
        let runtime: [UInt8]?
        let version: String?
    }

    let identities: GenerationalCache<Identity>
    let aliases: GenerationalCache<Alias>

    /// - Parameter capacity: entries per generation in each map; at most twice this many are held.
    init(capacity: Int = 32_768) {
        identities = GenerationalCache(capacity: capacity)
        aliases = GenerationalCache(capacity: capacity)
    }

    /// The SHA-256 of a certificate's text, hashed where the string keeps it.
    static func key(_ text: String) -> Key {
        var hasher = SHA256()
        var text = text
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return Key(hasher.finalize())
    }

    /// The key of an Alias certificate as checked against one identity (the SHA-256 of the
    /// identity's key and its text).
    static func key(alias: String, identity: Key) -> Key {
        var hasher = SHA256()
        withUnsafeBytes(of: identity.words) { hasher.update(bufferPointer: $0) }
        var alias = alias
        alias.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return Key(hasher.finalize())
    }

    /// A SHA-256 digest held inline: no allocation to make one or to look one up.
    struct Key: Hashable, Sendable {
        let words: (UInt64, UInt64, UInt64, UInt64)

        init(_ digest: SHA256.Digest) {
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            digest.withUnsafeBytes { digest in withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: digest) } }
            self.words = words
        }

        /// The digest's 32 bytes.
        var bytes: [UInt8] { withUnsafeBytes(of: words) { Array($0) } }

        static func == (a: Key, b: Key) -> Bool { a.words == b.words }

        func hash(into hasher: inout Hasher) {
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
        }
    }
}

/// A bounded map in two generations: a lookup searches both and moves a hit from the old
/// one to the new one; when the new one is full, the old one is dropped and the new one
/// takes its place. Roughly least-recently-used, with O(1) work per operation.
final class GenerationalCache<Value: Sendable>: Sendable {
    private struct Generations {
        var current: [AttestationCache.Key: Value] = [:]
        var previous: [AttestationCache.Key: Value] = [:]
    }

    private let capacity: Int
    private let state = Mutex(Generations())

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func value(for key: AttestationCache.Key) -> Value? {
        state.withLock { state in
            if let value = state.current[key] { return value }
            guard let value = state.previous.removeValue(forKey: key) else { return nil }
            Self.insert(value, for: key, into: &state, capacity: capacity)
            return value
        }
    }

    func insert(_ value: Value, for key: AttestationCache.Key) {
        state.withLock { Self.insert(value, for: key, into: &$0, capacity: capacity) }
    }

    var count: Int { state.withLock { $0.current.count + $0.previous.count } }

    private static func insert(_ value: Value, for key: AttestationCache.Key, into state: inout Generations, capacity: Int) {
        if state.current.count >= capacity {
            state.previous = state.current
            state.current = [:]
        }
        state.current[key] = value
    }
}
