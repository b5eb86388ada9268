public import Crypto
public import Foundation
public import RampartModel
public import X509

/// A security processor: the hardware (or its software stand-in) that holds the device's
/// identity key, records the measured launch and signs evidence about it. Two backends:
/// ``DICESecurityProcessor`` (software DICE) and ``TPMSecurityProcessor`` (TPM 2.0).
///
/// Only the ``SecurityMonitor`` uses a processor; the rest of the runtime reaches it through
/// the monitor's narrow interface and never sees key material.
public protocol SecurityProcessor: Sendable {
    var kind: SecurityProcessorKind { get }

    /// The identity key's public half (P-256), as DER SubjectPublicKeyInfo. The device ID is its SHA-256.
    func identityPublicKey() async throws -> [UInt8]

    /// TPM only: the endorsement-key certificate its maker stored in the TPM.
    func endorsementKeyCertificate() async throws -> Certificate?

    /// Starts a measured launch: forgets any earlier one (TPM: resets the launch PCR).
    func beginLaunch() async throws

    /// Records one measurement of the launch, in order; the first is the runtime itself
    /// (DICE: it selects the Alias key; TPM: extended into the launch PCR).
    func extend(_ digest: [UInt8]) async throws

    /// Signs an evidence payload after the launch was measured: DICE signs the bytes with
    /// the Alias key and shows the Alias certificate; TPM quotes the launch PCR with the
    /// payload's hash as qualifying data.
    func sign(payload: Data, softwareVersion: String, securityVersion: Int, now: Date) async throws -> SignedEvidence

    /// The value of a monotonic counter; 0 when it was never incremented.
    func counter(_ counter: MonotonicCounter) async throws -> UInt64

    /// Increments a monotonic counter and returns the new value. Counters never go back.
    func incrementCounter(_ counter: MonotonicCounter) async throws -> UInt64
}

/// What a processor adds to a payload to make it evidence.
public struct SignedEvidence: Sendable {
    public var signature: [UInt8]
    public var certificateChain: [String]
    public var quote: [UInt8]?

    public init(signature: [UInt8], certificateChain: [String] = [], quote: [UInt8]? = nil) {
        self.signature = signature
        self.certificateChain = certificateChain
        self.quote = quote
    }
}

extension MonotonicCounter {
    /// The TPM NV index (owner range 0x01000000–0x013FFFFF). An app component's counter is
    /// at 0x01000200 plus the first 12 bits of SHA-256 of its name: two components that
    /// collide share a counter, which is stricter, never weaker.
    /// The write-once index holding the counter's baseline on a TPM.
    var baselineIndex: UInt32 { nvIndex + 0x0010_0000 }

    var nvIndex: UInt32 {
        switch self {
        case .systemSoftware: return 0x0100_0100
        case .applications: return 0x0100_0101
        default:
            let digest = Array(SHA256.hash(data: Data(rawValue.utf8)))
            return 0x0100_0200 + (UInt32(digest[0]) << 4 | UInt32(digest[1]) >> 4)
        }
    }
}

extension SecurityMonitorInterface {
    /// Raises `counter` to at least `value` (a TPM counter moves by one per command) and
    /// returns where it stands. Idempotent, so it is safe to repeat after a power loss.
    public func advanceCounter(_ counter: MonotonicCounter, to value: UInt64) async throws -> UInt64 {
        var current = try await self.counter(counter)
        while current < value { current = try await incrementCounter(counter) }
        return current
    }
}
