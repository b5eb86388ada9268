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
    public func aliasKey(measurement: SHA256Digest) -> P256.Signing.PrivateKey {
        let cdi1 = Self.kdf(secret: cdi0, salt: Array(measurement), info: "rampart CDI layer 1")
        return Self.deriveKey(from: cdi1, label: "rampart Alias")
    }

    /// The Alias certificate: the Alias key, certified by the DeviceID key, carrying the
    /// measurement and software version in a DiceTcbInfo extension.
    public func aliasCertificate(
        measurement: SHA256Digest, version: String, securityVersion: Int, now: Date
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
            fwids: [Array(measurement)])
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try tcbInfo.certificateExtension()
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(alias.publicKey),
            notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew), notValidAfter: Lifetime.device.end(from: now),
            issuer: issuer, subject: subject, extensions: extensions, issuerPrivateKey: .init(deviceKey))
    }

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

/// The Unique Device Secret: 32 random bytes made once at provisioning, kept in a 0600 file,
/// read only by the security monitor.
public struct UniqueDeviceSecret: Sendable {
    let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw DeviceError.invalidSecret("the UDS must be 32 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// Creates a new secret at `path`; refuses to replace an existing one, since that
    /// would give the device a new identity.
    public static func provision(at path: String) throws -> UniqueDeviceSecret {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw DeviceError.alreadyProvisioned(path)
        }
        var generator = SystemRandomNumberGenerator()
        let secret = try UniqueDeviceSecret(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        try SecretFile.write(secret.bytes.map { String(format: "%02x", $0) }.joined() + "\n", to: path)
        return secret
    }

    public static func load(from path: String) throws -> UniqueDeviceSecret {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DeviceError.notProvisioned(path)
        }
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            guard let byte = UInt8(hex[index..<next], radix: 16) else { break }
            bytes.append(byte)
            index = next
        }
        return try UniqueDeviceSecret(bytes: bytes)
    }
}

/// DiceTcbInfo (TCG DICE Attestation Architecture, OID 2.23.133.5.4.1): what software a
/// DICE layer measured. All fields are IMPLICIT context-tagged; we write vendor, model,
/// version, svn, layer and the SHA-256 FWIDs.
public struct DiceTcbInfo: Sendable, Equatable {
    public static let oid: ASN1ObjectIdentifier = [2, 23, 133, 5, 4, 1]
    static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]

    public var vendor: String
    public var model: String
    public var version: String
    public var securityVersion: Int
    public var layer: Int
    /// SHA-256 digests of the measured firmware.
    public var fwids: [[UInt8]]

    public init(vendor: String, model: String, version: String, securityVersion: Int, layer: Int, fwids: [[UInt8]]) {
        self.vendor = vendor
        self.model = model
        self.version = version
        self.securityVersion = securityVersion
        self.layer = layer
        self.fwids = fwids
    }

    func certificateExtension() throws -> Certificate.Extension {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try ASN1UTF8String(vendor).serialize(into: &coder, withIdentifier: Self.tag(0))
            try ASN1UTF8String(model).serialize(into: &coder, withIdentifier: Self.tag(1))
            try ASN1UTF8String(version).serialize(into: &coder, withIdentifier: Self.tag(2))
            try securityVersion.serialize(into: &coder, withIdentifier: Self.tag(3))
            try layer.serialize(into: &coder, withIdentifier: Self.tag(4))
            try coder.appendConstructedNode(identifier: Self.tag(6)) { list in
                for digest in fwids {
                    try list.appendConstructedNode(identifier: .sequence) { fwid in
                        try fwid.serialize(Self.sha256)
                        try fwid.serialize(ASN1OctetString(contentBytes: ArraySlice(digest)))
                    }
                }
            }
        }
        return Certificate.Extension(oid: Self.oid, critical: false, value: ArraySlice(serializer.serializedBytes))
    }

    /// Reads the extension back (what a verifier does).
    public init(_ ext: Certificate.Extension) throws {
        guard ext.oid == Self.oid else { throw DeviceError.invalidTcbInfo("extension is \(ext.oid), not DiceTcbInfo") }
        let root = try DER.parse(ext.value)
        var vendor = "", model = "", version = ""
        var securityVersion = 0, layer = 0
        var fwids: [[UInt8]] = []
        try DER.sequence(root, identifier: .sequence) { nodes in
            while let node = nodes.next() {
                switch node.identifier {
                case Self.tag(0): vendor = try ASN1UTF8String(derEncoded: node, withIdentifier: Self.tag(0)).stringValue
                case Self.tag(1): model = try ASN1UTF8String(derEncoded: node, withIdentifier: Self.tag(1)).stringValue
                case Self.tag(2): version = try ASN1UTF8String(derEncoded: node, withIdentifier: Self.tag(2)).stringValue
                case Self.tag(3): securityVersion = try Int(derEncoded: node, withIdentifier: Self.tag(3))
                case Self.tag(4): layer = try Int(derEncoded: node, withIdentifier: Self.tag(4))
                case Self.tag(6):
                    fwids = try DER.sequence(of: FWID.self, identifier: Self.tag(6), rootNode: node).map(\.digest)
                default: continue
                }
            }
        }
        self.init(vendor: vendor, model: model, version: version, securityVersion: securityVersion, layer: layer, fwids: fwids)
    }

    static func tag(_ number: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: number, tagClass: .contextSpecific) }

    struct FWID: DERParseable {
        let digest: [UInt8]
        init(derEncoded node: ASN1Node) throws {
            digest = try DER.sequence(node, identifier: .sequence) { nodes in
                _ = try ASN1ObjectIdentifier(derEncoded: &nodes)
                return Array(try ASN1OctetString(derEncoded: &nodes).bytes)
            }
        }
    }
}

extension ASN1UTF8String {
    var stringValue: String { String(decoding: bytes, as: UTF8.self) }
}

/// Why a device-side operation failed.
public struct DeviceError: RampartError, Equatable {
    public let code: String
    public let message: String
    public var statusCode: Int { 500 }

    public static func == (lhs: DeviceError, rhs: DeviceError) -> Bool { lhs.code == rhs.code }

    static func invalidSecret(_ why: String) -> DeviceError { DeviceError(code: "invalid_secret", message: why) }
    static func alreadyProvisioned(_ path: String) -> DeviceError {
        DeviceError(code: "already_provisioned", message: "\(path) exists: this device has an identity already")
    }
    static func notProvisioned(_ path: String) -> DeviceError {
        DeviceError(code: "not_provisioned", message: "no device secret at \(path): provision the device first")
    }
    static func invalidTcbInfo(_ why: String) -> DeviceError { DeviceError(code: "invalid_tcb_info", message: why) }
}
