public import Crypto
public import Foundation
public import RampartModel
public import RampartPKI
public import X509
import Synchronization

/// The software-DICE backend: identity from a Unique Device Secret file (see
/// ``SoftwareDICE``), counters in a 0600 JSON file beside it.
///
/// Software counters stop a downgrade by the runtime, not by someone with root on the
/// device, who can edit the file; only a TPM's NV counters resist that.
public final class DICESecurityProcessor: SecurityProcessor {
    public let kind = SecurityProcessorKind.softwareDICE
    private let dice: SoftwareDICE
    private let countersPath: String
    private let state = Mutex<State>(State())

    private struct State {
        var launch: [[UInt8]] = []
    }

    /// - Parameters:
    ///   - uds: the device secret.
    ///   - countersPath: where the counters live (created on first increment).
    public init(uds: UniqueDeviceSecret, countersPath: String) {
        dice = SoftwareDICE(uds: uds)
        self.countersPath = countersPath
    }

    public func identityPublicKey() async throws -> [UInt8] { Array(dice.deviceIDKey.publicKey.derRepresentation) }

    public func endorsementKeyCertificate() async throws -> Certificate? { nil }

    /// The DeviceID certificate a factory station signs with the manufacturer CA.
    public func identityCertificate(endorsedBy manufacturer: CertificateAuthority, now: Date) throws -> Certificate {
        try dice.deviceIDCertificate(endorsedBy: manufacturer, now: now)
    }

    public func beginLaunch() async throws { state.withLock { $0.launch = [] } }

    public func extend(_ digest: [UInt8]) async throws { state.withLock { $0.launch.append(digest) } }

    public func sign(payload: Data, softwareVersion: String, securityVersion: Int, now: Date) async throws -> SignedEvidence {
        guard let runtime = state.withLock({ $0.launch.first }) else { throw DeviceError.notLaunched }
        let alias = try dice.aliasCertificate(
            measurement: runtime, version: softwareVersion, securityVersion: securityVersion, now: now)
        let signature = try dice.aliasKey(measurement: runtime).signature(for: payload)
        return SignedEvidence(signature: Array(signature.derRepresentation), certificateChain: [alias.pemString])
    }

    public func counter(_ counter: MonotonicCounter) async throws -> UInt64 {
        try readCounters()[counter.rawValue] ?? 0
    }

    public func incrementCounter(_ counter: MonotonicCounter) async throws -> UInt64 {
        var counters = try readCounters()
        let value = (counters[counter.rawValue] ?? 0) + 1
        counters[counter.rawValue] = value
        // Written beside and renamed over, so a power loss leaves the old or the new value, never neither.
        try SecretFile.write(String(decoding: try JSONEncoder.rampart.encode(counters), as: UTF8.self), to: countersPath + ".new")
        guard rename(countersPath + ".new", countersPath) == 0 else {
            throw DeviceError(code: "counters_unwritable", message: "cannot replace \(countersPath): \(String(cString: strerror(errno)))")
        }
        return value
    }

    private func readCounters() throws -> [String: UInt64] {
        guard let data = FileManager.default.contents(atPath: countersPath) else { return [:] }
        guard let counters = try? JSONDecoder.rampart.decode([String: UInt64].self, from: data) else {
            throw DeviceError(code: "counters_unreadable", message: "\(countersPath) does not hold the device's counters")
        }
        return counters
    }
}
