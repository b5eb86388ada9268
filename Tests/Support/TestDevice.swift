public import Crypto
public import Foundation
public import RampartDevice
public import RampartModel
public import RampartPKI

/// A software-DICE device for tests, provisioned by `manufacturer`, its security monitor
/// launched with ``runtime`` as the measured runtime. Its state lives in a temporary
/// directory nobody deletes before the process ends (it is tiny).
public struct TestDevice: Sendable {
    /// The measured runtime every test device runs, and its version: publish it as a release
    /// (``release``) or attestation is refused with `software_unknown`.
    public static let runtime = Array(SHA256.hash(data: Data("rampartd 1.0.0 build".utf8)))
    public static let version = "1.0.0"
    public static var release: PublishReleaseRequest {
        PublishReleaseRequest(version: version, measurement: runtime.hexString)
    }

    public let record: ProvisioningRecord
    public let monitor: SecurityMonitor
    /// The DICE engine itself, for tests that forge what a genuine device would not sign.
    public let dice: SoftwareDICE
    public var id: DeviceID { record.deviceId }

    public static func make(manufacturer: CertificateAuthority, runtime: [UInt8] = runtime, version: String = version)
        async throws -> TestDevice
    {
        let state = DeviceState(directory: try temporaryDirectory(prefix: "rampart-device") + "/state")
        let record = try await state.provision(.init(kind: .softwareDICE), manufacturer: manufacturer)
        let monitor = SecurityMonitor(processor: try state.openProcessor(), softwareVersion: version)
        try await monitor.launch(runtime: runtime)
        return TestDevice(record: record, monitor: monitor, dice: SoftwareDICE(uds: try UniqueDeviceSecret.load(from: state.udsPath)))
    }

    /// Evidence answering `nonce`, certifying a fresh client key.
    public func evidence(nonce: String, clientKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) async throws
        -> AttestationEvidence
    {
        try await monitor.evidence(nonce: nonce, clientKey: Array(clientKey.publicKey.derRepresentation))
    }
}
