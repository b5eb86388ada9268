public import Crypto
public import Foundation
public import RampartModel
public import RampartPKI
public import SwiftASN1
public import X509

/// The software DICE engine: a device identity rooted in a Unique Device Secret (UDS),
/// layered as TCG DICE describes, for devices without a TPM.
///
/// Two layers:
/// - **Layer 0** (the DICE engine itself, which changes only with a new engine version):
///   `CDI₀ = HKDF(UDS, salt: SHA-256(engine identity))`; the **DeviceID** key is derived
///   deterministically from CDI₀, so the device ID survives every software update.
/// - **Layer 1** (the device runtime, which updates often):
///   `CDI₁ = HKDF(CDI₀, salt: runtime measurement)`; the **Alias** key is derived from CDI₁
///   and so changes whenever the measured software changes. The DeviceID key certifies the
///   Alias key in a certificate whose DiceTcbInfo extension (OID 2.23.133.5.4.1) carries
///   the measurement, so a verifier learns what software holds the Alias key.
///
/// ```swift
/// let uds = try UniqueDeviceSecret.provision(at: "/var/lib/rampart/uds")
/// let dice = SoftwareDICE(uds: uds)
/// let alias = try dice.alias(measurement: runtimeDigest, version: "1.2.0")
/// ```
public struct SoftwareDICE: Sendable {
    /// Names layer 0. Changing it changes every device ID, so it is versioned, not edited.
    public static let engineIdentity = "rampart-dice-engine/1"

    private let cdi0: [UInt8]

    public init(uds: UniqueDeviceSecret) {
        let salt = Array(SHA256.hash(data: Data(Self.engineIdentity.utf8)))
        cdi0 = Self.kdf(secret: uds.bytes, salt: salt, info: "rampart CDI layer 0")
    }

    /// The DeviceID key: stable for the life of the UDS.
    public var deviceIDKey: P256.Signing.PrivateKey {
        Self.deriveKey(from: cdi0, label: "rampart DeviceID")
    }

    /// The device ID: lowercase hex SHA-256 over the DeviceID key's SubjectPublicKeyInfo.
    public var deviceID: DeviceID { DeviceIdentity.deviceID(for: deviceIDKey.publicKey) }

    /// The Alias key for software with this measurement (SHA-256 of the measured runtime).
    public func aliasKey(measurement: [UInt8]) -> P256.Signing.PrivateKey {
        let cdi1 = Self.kdf(secret: cdi0, salt: measurement, info: "rampart CDI layer 1")
        return Self.deriveKey(from: cdi1, label: "rampart Alias")
    }

    /// The Alias certificate: the Alias key, certified by the DeviceID key, carrying the
    /// measurement and software version in a DiceTcbInfo extension. Made once per launch,
    /// as a DICE layer does at boot, so it lasts as long as the launch: its `notAfter` is
    /// RFC 5280's "no well-defined expiration date", 99991231235959Z.
    public func aliasCertificate(
        measurement: [UInt8], version: String, securityVersion: Int, now: Date
    ) throws -> Certificate {
        let alias = aliasKey(measurement: measurement)
        let deviceKey = deviceIDKey
        let issuer = try DistinguishedName {
            OrganizationName("Rampart device")
            CommonName(deviceID.hex)
        }
        let subject = try DistinguishedName {
            OrganizationName("Rampart device alias")
            CommonName(deviceID.hex)
        }
        let tcbInfo = DiceTcbInfo(
            vendor: "Rampart", model: "rampartd", version: version, securityVersion: securityVersion, layer: 1,
            fwids: [measurement])
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try tcbInfo.certificateExtension()
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(alias.publicKey),
            notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew), notValidAfter: Self.aliasNotAfter,
            issuer: issuer, subject: subject, extensions: extensions, issuerPrivateKey: .init(deviceKey))
    }

    /// 9999-12-31T23:59:59Z: the certificate ends with the launch, not at a date.
    static let aliasNotAfter = Date(timeIntervalSince1970: 253_402_300_799)

    /// The DeviceID certificate a manufacturer issues at provisioning: it endorses the
    /// DeviceID public key as a genuine device of theirs.
    public func deviceIDCertificate(endorsedBy manufacturer: CertificateAuthority, now: Date) throws -> Certificate {
        let subject = try DistinguishedName {
            OrganizationName("Rampart device")
            CommonName(deviceID.hex)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(deviceIDKey.publicKey),
            notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew),
            notValidAfter: manufacturer.certificate.notValidAfter, issuer: manufacturer.certificate.subject,
            subject: subject, extensions: extensions, issuerPrivateKey: manufacturer.privateKey)
    }

    static func kdf(secret: [UInt8], salt: [UInt8], info: String) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: secret), salt: salt, info: Data(info.utf8), outputByteCount: 32)
        return key.withUnsafeBytes { Array($0) }
    }

    /// A P-256 key from a secret, deterministically. A candidate scalar outside [1, n-1]
    /// (probability about 2⁻³²) is rejected and the next counter tried.
    static func deriveKey(from secret: [UInt8], label: String) -> P256.Signing.PrivateKey {
        for counter in 0..<UInt8.max {
            let candidate = kdf(secret: secret, salt: [counter], info: label)
            if let key = try? P256.Signing.PrivateKey(rawRepresentation: candidate) { return key }
        }
        preconditionFailure("no valid P-256 scalar in 255 HKDF outputs")
    }
}
