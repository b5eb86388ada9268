public import Foundation
public import RampartModel
public import RampartPKI

/// A device's state directory (mode 0700) and what lives in it:
///
/// | file | what |
/// |---|---|
/// | `processor.json` | which security processor holds the identity (and the TPM's TCTI) |
/// | `uds` | software DICE only: the Unique Device Secret (0600) |
/// | `counters.json` | software DICE only: the monotonic counters (0600) |
/// | `provisioning-record.json` | the record `rampart device claim --record` takes |
/// | `config.json` | the runtime's configuration, measured at launch when present |
/// | `images/` | installed images, each measured at launch |
/// | `certificate.pem`, `client-key.pem` | the current 24-hour credential (key 0600) |
/// | `monitor.sock` | the security monitor's socket (0600) |
public struct DeviceState: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var processorPath: String { "\(directory)/processor.json" }
    public var udsPath: String { "\(directory)/uds" }
    public var countersPath: String { "\(directory)/counters.json" }
    public var recordPath: String { "\(directory)/provisioning-record.json" }
    public var configPath: String { "\(directory)/config.json" }
    public var imagesDirectory: String { "\(directory)/images" }
    public var certificatePath: String { "\(directory)/certificate.pem" }
    public var clientKeyPath: String { "\(directory)/client-key.pem" }
    /// The last attestation's result (tenant, device, chain), for a start without the service.
    public var attestationPath: String { "\(directory)/attestation.json" }
    /// The Rampart root CA the device pinned (by fingerprint) when it first reached the service.
    public var serviceRootPath: String { "\(directory)/service-root.pem" }
    /// Extra CA certificates apps' HTTPS servers may chain to, beside the system's (optional).
    public var appTrustPath: String { "\(directory)/app-trust.pem" }
    /// Apps' storage and logs.
    public var appsDirectory: String { "\(directory)/apps" }
    public var socketPath: String { "\(directory)/monitor.sock" }

    /// Which processor, and how to reach it.
    public struct ProcessorConfiguration: Codable, Sendable, Equatable {
        public var kind: SecurityProcessorKind
        /// TPM only: the TCTI, e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`.
        public var tcti: String?
        public init(kind: SecurityProcessorKind, tcti: String? = nil) {
            self.kind = kind
            self.tcti = tcti
        }
    }

    /// Creates the device's identity and its provisioning record, endorsed by `manufacturer`.
    /// Refuses a directory that holds an identity already: a new one would be a new device.
    public func provision(
        _ configuration: ProcessorConfiguration, manufacturer: CertificateAuthority, now: Date = Date()
    ) async throws -> ProvisioningRecord {
        guard !FileManager.default.fileExists(atPath: processorPath) else { throw DeviceError.alreadyProvisioned(processorPath) }
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if configuration.kind == .softwareDICE { _ = try UniqueDeviceSecret.provision(at: udsPath) }
        let processor = try open(configuration)
        let record = try await Provisioning.record(for: processor, manufacturer: manufacturer, now: now)
        try write(configuration, to: processorPath)
        try write(record, to: recordPath)
        return record
    }

    public func processorConfiguration() throws -> ProcessorConfiguration {
        guard let data = FileManager.default.contents(atPath: processorPath) else {
            throw DeviceError.notProvisioned(processorPath)
        }
        guard let configuration = try? JSONDecoder.rampart.decode(ProcessorConfiguration.self, from: data) else {
            throw DeviceError(code: "invalid_state", message: "\(processorPath) is not a processor configuration")
        }
        return configuration
    }

    public func openProcessor() throws -> any SecurityProcessor { try open(try processorConfiguration()) }

    public func record() throws -> ProvisioningRecord {
        guard let data = FileManager.default.contents(atPath: recordPath),
            let record = try? JSONDecoder.rampart.decode(ProvisioningRecord.self, from: data)
        else { throw DeviceError.notProvisioned(recordPath) }
        return record
    }

    /// What the launch measures, in order: the runtime executable, its configuration when
    /// present, then every installed image by name.
    public func launchComponents(runtime: String = "/proc/self/exe") -> [LaunchComponent] {
        var components = [LaunchComponent(name: "rampartd", path: runtime)]
        if FileManager.default.fileExists(atPath: configPath) {
            components.append(LaunchComponent(name: "config", path: configPath))
        }
        let images = (try? FileManager.default.contentsOfDirectory(atPath: imagesDirectory)) ?? []
        for image in images.sorted() where !image.hasPrefix(".") {
            components.append(LaunchComponent(name: "image:\(image)", path: "\(imagesDirectory)/\(image)"))
        }
        return components
    }

    private func open(_ configuration: ProcessorConfiguration) throws -> any SecurityProcessor {
        switch configuration.kind {
        case .softwareDICE:
            return DICESecurityProcessor(uds: try UniqueDeviceSecret.load(from: udsPath), countersPath: countersPath)
        case .tpm2:
            guard let tcti = configuration.tcti else {
                throw DeviceError(code: "invalid_state", message: "\(processorPath) names a TPM but no TCTI")
            }
            return try TPMSecurityProcessor(tcti: tcti)
        }
    }

    private func write(_ value: some Encodable, to path: String) throws {
        let encoder = JSONEncoder.rampart
        encoder.outputFormatting.insert(.prettyPrinted)
        try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
