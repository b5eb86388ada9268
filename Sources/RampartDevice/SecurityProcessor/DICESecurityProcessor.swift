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
        /// The launch's Alias certificate, made at its first evidence.
        var alias: Alias?
    }

    private struct Alias {
        let runtime: [UInt8]
        let softwareVersion: String
        let securityVersion: Int
        let certificatePEM: String
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

    public func beginLaunch() async throws { state.withLock { $0 = State() } }

    public func extend(_ digest: [UInt8]) async throws { state.withLock { $0.launch.append(digest) } }

    public func sign(payload: Data, softwareVersion: String, securityVersion: Int, now: Date) async throws -> SignedEvidence {
        let (runtime, current) = state.withLock { ($0.launch.first, $0.alias) }
        guard let runtime else { throw DeviceError.notLaunched }
        // One Alias certificate per launch, like a DICE layer's at boot: every evidence of
        // the launch shows the same bytes, which lets the service skip re-verifying it.
        let alias: Alias
        if let current, current.runtime == runtime, current.softwareVersion == softwareVersion,
            current.securityVersion == securityVersion
        {
            alias = current
        } else {
            let certificate = try dice.aliasCertificate(
                measurement: runtime, version: softwareVersion, securityVersion: securityVersion, now: now)
            alias = Alias(
                runtime: runtime, softwareVersion: softwareVersion, securityVersion: securityVersion,
                certificatePEM: certificate.pemString)
            state.withLock { $0.alias = alias }
        }
        let signature = try dice.aliasKey(measurement: runtime).signature(for: payload)
        return SignedEvidence(signature: Array(signature.derRepresentation), certificateChain: [alias.certificatePEM])
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
