public import Crypto
public import Foundation
public import RampartModel
import RampartPKI

/// The narrow interface through which the device runtime reaches its security monitor:
/// who the device is, evidence for a nonce, and the monotonic counters. Nothing here
/// returns or accepts key material, and nothing adds a measurement after launch.
///
/// ``SecurityMonitor`` implements it in-process; ``MonitorClient`` over the monitor's
/// Unix socket, which is how `rampartd run` uses it.
public protocol SecurityMonitorInterface: Sendable {
    func identity() async throws -> MonitorIdentity
    /// Signed evidence answering `nonce`, certifying `clientKey` (DER SPKI) for mutual TLS.
    func evidence(nonce: String, clientKey: [UInt8]) async throws -> AttestationEvidence
    func counter(_ counter: MonotonicCounter) async throws -> UInt64
    func incrementCounter(_ counter: MonotonicCounter) async throws -> UInt64
}

/// Who the device is and what it launched.
public struct MonitorIdentity: Codable, Sendable, Equatable {
    public var deviceId: DeviceID
    public var securityProcessor: SecurityProcessorKind
    public var softwareVersion: String
    /// The measurement log of the launch, in order.
    public var measurements: [MeasuredComponent]
}

/// One file the launch measures, by the name it has in the measurement log.
public struct LaunchComponent: Sendable {
    public var name: String
    public var path: String
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// The security monitor: the one component that uses the security processor. At start it
/// performs the **measured launch** — hashing the runtime executable, its configuration
/// and every installed image, in that order, into the processor (DICE layer 1 / TPM PCR)
/// and the measurement log — before it answers anything. After that the log is fixed.
public actor SecurityMonitor: SecurityMonitorInterface {
    private let processor: any SecurityProcessor
    private let softwareVersion: String
    private let securityVersion: Int
    private var log: [MeasuredComponent] = []
    private var deviceID: DeviceID?

    public init(processor: any SecurityProcessor, softwareVersion: String, securityVersion: Int = 1) {
        self.processor = processor
        self.softwareVersion = softwareVersion
        self.securityVersion = securityVersion
    }

    /// Measures `components` (the runtime first). A file that cannot be read stops the
    /// launch: an unmeasured component must not run.
    public func launch(_ components: [LaunchComponent]) async throws {
        var measured: [MeasuredComponent] = []
        for component in components {
            guard let data = FileManager.default.contents(atPath: component.path) else {
                throw DeviceError(code: "launch_unmeasurable", message: "cannot read \(component.path) to measure \(component.name)")
            }
            measured.append(MeasuredComponent(name: component.name, sha256: SHA256.hash(data: data).hexString))
        }
        try await launch(measured: measured)
    }

    /// A launch of just the runtime, known by its SHA-256 (for simulated devices).
    public func launch(runtime digest: [UInt8]) async throws {
        try await launch(measured: [MeasuredComponent(name: "rampartd", sha256: digest.hexString)])
    }

    /// Records measurements already taken, the runtime first.
    public func launch(measured: [MeasuredComponent]) async throws {
        guard log.isEmpty else {
            throw DeviceError(code: "already_launched", message: "the launch was measured already; its log is fixed")
        }
        guard !measured.isEmpty else { throw DeviceError(code: "launch_empty", message: "a launch measures at least the runtime") }
        let digests = try measured.map { component -> [UInt8] in
            guard let bytes = [UInt8](hexString: component.sha256), bytes.count == 32 else {
                throw DeviceError(code: "invalid_measurement", message: "\(component.name): not a SHA-256 digest in hex")
            }
            return bytes
        }
        try await processor.beginLaunch()
        for digest in digests { try await processor.extend(digest) }
        log = measured
    }

    public func identity() async throws -> MonitorIdentity {
        let id = try await currentDeviceID()
        return MonitorIdentity(
            deviceId: id, securityProcessor: processor.kind, softwareVersion: softwareVersion, measurements: log)
    }

    public func evidence(nonce: String, clientKey: [UInt8]) async throws -> AttestationEvidence {
        guard !log.isEmpty else { throw DeviceError.notLaunched }
        guard (try? P256.Signing.PublicKey(derRepresentation: clientKey)) != nil else {
            throw DeviceError(code: "invalid_client_key", message: "the client key must be a DER P-256 SubjectPublicKeyInfo")
        }
        guard let nonceBytes = Data(base64Encoded: nonce), nonceBytes.count == 32 else {
            throw DeviceError(code: "invalid_nonce", message: "the nonce must be 32 bytes, base64")
        }
        var counters: [String: UInt64] = [:]
        for counter in MonotonicCounter.allCases { counters[counter.rawValue] = try await processor.counter(counter) }
        let payload = AttestationPayload(
            deviceId: try await currentDeviceID(), nonce: nonce, softwareVersion: softwareVersion, measurements: log,
            counters: counters, clientKey: Data(clientKey).base64EncodedString())
        let bytes = try JSONEncoder.rampart.encode(payload)
        let signed = try await processor.sign(
            payload: bytes, softwareVersion: softwareVersion, securityVersion: securityVersion, now: Date())
        return AttestationEvidence(
            payload: bytes.base64EncodedString(), signature: Data(signed.signature).base64EncodedString(),
            certificateChain: signed.certificateChain, quote: signed.quote.map { Data($0).base64EncodedString() })
    }

    public func counter(_ counter: MonotonicCounter) async throws -> UInt64 { try await processor.counter(counter) }

    public func incrementCounter(_ counter: MonotonicCounter) async throws -> UInt64 {
        try await processor.incrementCounter(counter)
    }

    private func currentDeviceID() async throws -> DeviceID {
        if let deviceID { return deviceID }
        let id = try await identityDeviceID()
        deviceID = id
        return id
    }

    private func identityDeviceID() async throws -> DeviceID {
        let key = try P256.Signing.PublicKey(derRepresentation: try await processor.identityPublicKey())
        return DeviceID(publicKey: key)
    }
}
