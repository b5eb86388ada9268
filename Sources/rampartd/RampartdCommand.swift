import ArgumentParser
import Crypto
import Foundation
import RampartCLI
import RampartDevice
import RampartModel
import RampartPKI
import SwiftASN1
import X509

/// `rampartd`: the device runtime. Today it provisions a software-DICE identity, shows it,
/// and attests once against a Security Service.
@main
struct RampartdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rampartd",
        abstract: "The Rampart device runtime: identity, measured launch and attestation.",
        discussion: """
            The device's identity is a software DICE engine: a Unique Device Secret in \
            <state-dir>/uds (mode 0600) from which the DeviceID key is derived; the Alias key that \
            signs attestation evidence is derived from it and the SHA-256 of this executable, so it \
            changes whenever the runtime does.
            """,
        subcommands: [ManufacturerCA.self, Provision.self, Identity.self, Attest.self]
    )
}

struct StateOptions: ParsableArguments {
    @Option(name: .customLong("state-dir"), help: "Where the device keeps its secret, certificates and settings.")
    var stateDirectory = "./rampartd-state"

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    var udsPath: String { "\(stateDirectory)/uds" }
    var deviceIDCertificatePath: String { "\(stateDirectory)/deviceid.pem" }
    var certificatePath: String { "\(stateDirectory)/certificate.pem" }

    func loadIdentity() throws -> (SoftwareDICE, Certificate) {
        let dice = SoftwareDICE(uds: try UniqueDeviceSecret.load(from: udsPath))
        guard let pem = try? String(contentsOfFile: deviceIDCertificatePath, encoding: .utf8),
            let certificate = try? Certificate(pemEncoded: pem)
        else { throw ValidationError("no DeviceID certificate at \(deviceIDCertificatePath): run `rampartd provision` first") }
        return (dice, certificate)
    }

    func emit<T: Encodable>(_ value: T, _ human: String) throws {
        if json {
            let encoder = JSONEncoder.rampart
            encoder.outputFormatting.insert(.prettyPrinted)
            print(String(decoding: try encoder.encode(value), as: UTF8.self))
        } else {
            print(human)
        }
    }
}

/// The measurement of the running runtime: SHA-256 of this executable.
func runtimeMeasurement() throws -> SHA256Digest {
    guard let data = FileManager.default.contents(atPath: "/proc/self/exe") else {
        throw ValidationError("cannot read /proc/self/exe to measure the runtime")
    }
    return SHA256.hash(data: data)
}


/// The runtime's version, reported in attestation evidence.
let runtimeVersion = "0.1.0"

struct ManufacturerCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manufacturer-ca",
        abstract: "Create a manufacturer CA (for a test line): ca.pem and ca.key (mode 0600) in --out.",
        discussion: "Give ca.pem to the Security Service (--manufacturer-ca) so it trusts devices this CA endorses.")
    @Option(help: "Directory to write ca.pem and ca.key.") var out: String
    @Option(help: "The CA's common name.") var name = "Rampart Manufacturing CA"

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let ca = try CertificateAuthority.makeRoot(commonName: name, now: Date())
        try ca.certificate.pemString.write(toFile: "\(out)/ca.pem", atomically: true, encoding: .utf8)
        try SecretFile.write(ca.privateKeyPEM, to: "\(out)/ca.key")
        print("Wrote \(out)/ca.pem and \(out)/ca.key (SHA-256 \(ca.certificate.sha256Fingerprint)).")
    }
}

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the device identity and have the manufacturer CA endorse it.",
        discussion: """
            Creates the Unique Device Secret (refusing to replace one), derives the DeviceID key, \
            and signs its certificate with the manufacturer CA as a factory station would. Prints \
            the device ID and the provisioning record (the DeviceID certificate).
            """)
    @OptionGroup var state: StateOptions
    @Option(name: .customLong("manufacturer-cert"), help: "The manufacturer CA certificate (PEM).") var manufacturerCertificate: String
    @Option(name: .customLong("manufacturer-key"), help: "The manufacturer CA private key (PEM).") var manufacturerKey: String

    struct Record: Encodable {
        let deviceId: DeviceID
        let deviceIdCertificate: String
    }

    func run() throws {
        guard let certificatePEM = try? String(contentsOfFile: manufacturerCertificate, encoding: .utf8),
            let keyPEM = try? String(contentsOfFile: manufacturerKey, encoding: .utf8)
        else { throw ValidationError("cannot read the manufacturer CA certificate or key") }
        let manufacturer = try CertificateAuthority(certificatePEM: certificatePEM, privateKeyPEM: keyPEM)
        try FileManager.default.createDirectory(
            atPath: state.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let dice = SoftwareDICE(uds: try UniqueDeviceSecret.provision(at: state.udsPath))
        let certificate = try dice.deviceIDCertificate(endorsedBy: manufacturer, now: Date())
        try certificate.pemString.write(toFile: state.deviceIDCertificatePath, atomically: true, encoding: .utf8)
        try state.emit(
            Record(deviceId: dice.deviceID, deviceIdCertificate: certificate.pemString),
            "Provisioned device \(dice.deviceID)\nProvisioning record (DeviceID certificate):\n\(certificate.pemString)")
    }
}

struct Identity: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the device ID and what the runtime measures.")
    @OptionGroup var state: StateOptions

    struct Shown: Encodable {
        let deviceId: DeviceID
        let engine: String
        let runtimeMeasurement: String
        let softwareVersion: String
        let certificateExpiresAt: Date?
    }

    func run() throws {
        let (dice, _) = try state.loadIdentity()
        let measurement = try runtimeMeasurement()
        let expiry = (try? String(contentsOfFile: state.certificatePath, encoding: .utf8))
            .flatMap { try? RampartPKI.certificates(fromPEMBundle: $0).first?.notValidAfter }
        let shown = Shown(
            deviceId: dice.deviceID, engine: "software DICE (\(SoftwareDICE.engineIdentity))",
            runtimeMeasurement: measurement.hexString, softwareVersion: runtimeVersion, certificateExpiresAt: expiry)
        try state.emit(
            shown,
            """
            device id            \(shown.deviceId)
            identity engine      \(shown.engine)
            runtime measurement  \(shown.runtimeMeasurement) (SHA-256 of /proc/self/exe)
            software version     \(shown.softwareVersion)
            certificate expires  \(expiry.map { "\($0)" } ?? "no certificate yet: run rampartd attest")
            """)
    }
}

struct Attest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attest once: challenge, signed evidence, and a 24-hour client certificate.",
        discussion: "The certificate chain is saved to <state-dir>/certificate.pem for mutual TLS.")
    @OptionGroup var state: StateOptions
    @Option(help: "Security Service URL.") var server: String
    @Option(help: "SHA-256 fingerprint of the service's root CA, to pin it.") var fingerprint: String

    func run() async throws {
        let (dice, deviceCertificate) = try state.loadIdentity()
        let measurement = try runtimeMeasurement()
        let result = try await DeviceSession.attest(
            server: server, fingerprint: fingerprint, dice: dice, deviceIDCertificate: deviceCertificate,
            runtimeMeasurement: measurement, softwareVersion: runtimeVersion)
        try result.certificateChain.joined().write(toFile: state.certificatePath, atomically: true, encoding: .utf8)
        try state.emit(
            result,
            "Attested: device \(result.deviceId) of tenant \(result.tenantId), certificate valid until \(result.expiresAt); saved to \(state.certificatePath)")
    }
}
