public import Crypto
public import Foundation
public import RampartModel
public import SwiftASN1
public import X509

/// A certificate authority: a certificate and the private key that signs with it.
///
/// ```swift
/// let root = try CertificateAuthority.makeRoot(commonName: "Rampart Root CA", now: .now)
/// let intermediate = try root.issueSubordinate(commonName: "Rampart Intermediate CA", lifetime: .intermediate, now: .now)
/// ```
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey
    /// The same key as swift-crypto's, to sign device certificates without the X509 layer.
    private let signer: Signer
    var signingKey: P256.Signing.PrivateKey { signer.key }
    /// The identifier of the CA's key, for the AuthorityKeyIdentifier of what it issues:
    /// its own certificate's SubjectKeyIdentifier, worked out once.
    private let keyID: ArraySlice<UInt8>
    /// What every device certificate this CA issues shares, encoded once.
    let deviceCertificateForm: DeviceCertificateForm

    public init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = Certificate.PrivateKey(privateKey)
        signer = Signer(key: privateKey)
        keyID = Self.keyID(of: certificate)
        deviceCertificateForm = DeviceCertificateForm(issuer: certificate, keyID: keyID)
    }

    private static func keyID(of certificate: Certificate) -> ArraySlice<UInt8> {
        (try? certificate.extensions.subjectKeyIdentifier)??.keyIdentifier ?? RampartPKI.keyIdentifier(of: certificate.publicKey)
    }

    /// The private key in PKCS#8 PEM.
    public var privateKeyPEM: String {
        try! privateKey.serializeAsPEM().pemString + "\n"
    }

    /// Loads a CA from its certificate and key in PEM.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw PKIError.invalidPEM("CA certificate")
        }
        do {
            let key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
            signer = Signer(key: key)
            privateKey = Certificate.PrivateKey(key)
        } catch {
            throw PKIError.invalidPEM("CA private key")
        }
        keyID = Self.keyID(of: certificate)
        deviceCertificateForm = DeviceCertificateForm(issuer: certificate, keyID: keyID)
    }

    /// A new self-signed root CA with a fresh P-256 key.
    public static func makeRoot(commonName: String, now: Date) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Rampart")
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: publicKey))
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew),
            notValidAfter: Lifetime.root.end(from: now),
            issuer: name,
            subject: name,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return CertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// A subordinate CA (intermediate or tenant CA) signed by this one.
    ///
    /// - Parameter maxPathLength: 0 for a CA that may only issue leaves.
    public func issueSubordinate(
        commonName: String, organizationalUnit: String? = nil, lifetime: Lifetime, maxPathLength: Int?, now: Date
    ) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Rampart")
            if let organizationalUnit { OrganizationalUnitName(organizationalUnit) }
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: maxPathLength))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: publicKey))
            AuthorityKeyIdentifier(keyIdentifier: keyIdentifier(of: certificate.publicKey))
        }
        let notAfter = min(lifetime.end(from: now), certificate.notValidAfter)
        let issued = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew),
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: subject,
            extensions: extensions,
            issuerPrivateKey: privateKey
        )
        return CertificateAuthority(certificate: issued, privateKey: key)
    }

    /// A TLS server certificate for the Security Service's own HTTPS endpoint.
    public func issueServerCertificate(
        hostnames: [String], ipAddresses: [[UInt8]], publicKey: P256.Signing.PublicKey, now: Date
    ) throws -> Certificate {
        let subject = try DistinguishedName {
            OrganizationName("Rampart")
            CommonName(hostnames.first ?? "rampart-server")
        }
        let key = Certificate.PublicKey(publicKey)
        var names: [GeneralName] = hostnames.map { .dnsName($0) }
        names += ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(names)
            SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: key))
            AuthorityKeyIdentifier(keyIdentifier: keyIdentifier(of: certificate.publicKey))
        }
        let start = now.addingTimeInterval(-Lifetime.clockSkew)
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key,
            notValidBefore: start,
            notValidAfter: min(Lifetime.server.end(from: start), certificate.notValidAfter),
            issuer: certificate.subject,
            subject: subject,
            extensions: extensions,
            issuerPrivateKey: privateKey
        )
    }
}

/// RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the public key bits.
func keyIdentifier(of key: Certificate.PublicKey) -> ArraySlice<UInt8> {
    keyIdentifier(ofKeyBits: key.subjectPublicKeyInfoBytes)
}

/// RFC 7093 method 1 over the subjectPublicKey BIT STRING's content.
func keyIdentifier(ofKeyBits bits: some DataProtocol) -> ArraySlice<UInt8> {
    ArraySlice(SHA256.hash(data: bits).prefix(20))
}

extension Certificate {
    /// The certificate's DER encoding.
    public var derBytes: [UInt8] {
        try! DER.encoded(self)
    }

    /// The certificate in PEM, ending with a newline so certificates concatenate into a bundle.
    public var pemString: String {
        PEM.encode(derBytes, label: "CERTIFICATE")
    }

    /// Lowercase hex SHA-256 over the DER encoding, as `openssl x509 -fingerprint -sha256` shows it
    /// (without colons).
    public var sha256Fingerprint: String {
        SHA256.hash(data: derBytes).hexString
    }

    /// The serial number in hex.
    public var serialHex: String {
        serialNumber.bytes.hexString
    }

    /// Whether `issuer` issued this certificate: its subject is our issuer name and its key
    /// made our signature. (Names alone prove nothing; the signature alone could match a
    /// re-keyed issuer of another name.)
    public func isIssued(by issuer: Certificate) -> Bool {
        self.issuer == issuer.subject && issuer.publicKey.isValidSignature(signature, for: self)
    }

    /// Whether the basic constraints make this a CA certificate (absent or unreadable: no).
    public var isCertificateAuthority: Bool {
        (try? extensions.basicConstraints).map { $0 != .notCertificateAuthority } ?? false
    }

    /// Whether the key usage allows signing certificates (absent or unreadable: no).
    public var certifiesKeys: Bool {
        (try? extensions.keyUsage)?.keyCertSign ?? false
    }
}

/// Splits a PEM bundle into certificates, in order.
public func certificates(fromPEMBundle text: String) throws -> [Certificate] {
    let documents = try PEMDocument.parseMultiple(pemString: text)
    return try documents.filter { $0.discriminator == "CERTIFICATE" }.map { try Certificate(pemDocument: $0) }
}

extension CertificateAuthority {
    /// A code-signing certificate (digitalSignature, codeSigning, not a CA, one year): the
    /// key that signs a tenant's image packages or the service's system software.
    public func issueSigningCertificate(commonName: String, publicKey: P256.Signing.PublicKey, now: Date) throws -> Certificate {
        let subject = try DistinguishedName {
            OrganizationName("Rampart")
            CommonName(commonName)
        }
        let key = Certificate.PublicKey(publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.codeSigning])
            SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: key))
            AuthorityKeyIdentifier(keyIdentifier: keyIdentifier(of: certificate.publicKey))
        }
        let start = now.addingTimeInterval(-Lifetime.clockSkew)
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key, notValidBefore: start,
            notValidAfter: min(Lifetime.signing.end(from: start), certificate.notValidAfter), issuer: certificate.subject,
            subject: subject, extensions: extensions, issuerPrivateKey: privateKey)
    }
}

extension DistinguishedName {
    /// The first common name, if any.
    public var commonName: String? {
        for rdn in self {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                if let text = String(attribute.value) { return text }
            }
        }
        return nil
    }
}

/// The common names of the Rampart hierarchy's CAs and signing keys. The name says whose a
/// key is, so verifiers compare names as well as signatures.
public enum SigningNames {
    public static func tenantCA(_ tenant: TenantID) -> String { "Rampart Tenant CA \(tenant)" }
    public static func imageSigning(_ tenant: TenantID) -> String { "Rampart Image Signing \(tenant)" }
    public static let systemSoftwareSigning = "Rampart System Software Signing"
    /// The key that signs a tenant's TUF root metadata; devices check this name.
    public static func updateRoot(_ tenant: TenantID) -> String { "Rampart Update Root \(tenant)" }
}

/// A CA's P-256 key as swift-crypto holds it. `@unchecked Sendable`: it is never mutated,
/// and BoringSSL signs with one key from many threads at once (swift-certificates'
/// `Certificate.PrivateKey`, which is `Sendable`, shares it the same way).
private final class Signer: @unchecked Sendable {
    let key: P256.Signing.PrivateKey
    init(key: P256.Signing.PrivateKey) { self.key = key }
}
