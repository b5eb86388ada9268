public import Crypto
public import Foundation
public import RampartModel
public import RampartPKI
import SwiftASN1
public import X509

/// `signature.json`: an ECDSA P-256 signature over the exact bytes of `metadata.json`, and
/// the certificate chain of the key that made it (signing certificate, then the CAs above
/// it up to but not including the Rampart root, PEM).
public struct ImagePackageSignature: Codable, Sendable, Equatable {
    public static let algorithmName = "ecdsa-p256-sha256"

    public var algorithm: String
    /// Base64 of the DER-encoded signature.
    public var signature: String
    /// Empty for a developer-signed package.
    public var certificateChain: [String]
    /// A developer-signed package's key (SPKI PEM): trusted only by a device whose
    /// development capability lists it.
    public var developerKey: String?

    public init(algorithm: String = Self.algorithmName, signature: String, certificateChain: [String], developerKey: String? = nil) {
        self.algorithm = algorithm
        self.signature = signature
        self.certificateChain = certificateChain
        self.developerKey = developerKey
    }

    /// Signs `bytes` with a P-256 key (PKCS#8 or SEC1 PEM).
    static func make(over bytes: Data, privateKeyPEM: String, certificateChain: [String], developer: Bool = false) throws -> ImagePackageSignature {
        let key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        return ImagePackageSignature(
            signature: try key.signature(for: bytes).derRepresentation.base64EncodedString(), certificateChain: certificateChain,
            developerKey: developer ? key.publicKey.pemRepresentation : nil)
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder.rampart
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    static func decode(_ bytes: Data) throws -> ImagePackageSignature {
        let signature: ImagePackageSignature
        do {
            signature = try JSONDecoder.rampart.decode(ImagePackageSignature.self, from: bytes)
        } catch {
            throw ImagePackageError("image_signature_invalid", "the signature cannot be read: \(error)")
        }
        guard signature.algorithm == algorithmName else {
            throw ImagePackageError("image_signature_invalid", "signature algorithm '\(signature.algorithm.prefix(40))' is not \(algorithmName)")
        }
        return signature
    }

    /// Whether this signature over `bytes` verifies with `key`.
    func verifies(_ bytes: Data, with key: P256.Signing.PublicKey) -> Bool {
        guard let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: Data(base64Encoded: signature) ?? Data()) else { return false }
        return key.isValidSignature(ecdsa, for: bytes)
    }
}

extension ImagePackage {
    /// The package the service stores: `imageId`, `tenantId` (apps) and `signedAt` set in
    /// the metadata, and `signature.json` added. Refused when the package is signed already
    /// or carries any of those fields: only the service assigns them.
    ///
    /// - Parameters:
    ///   - privateKeyPEM: the signing key (PKCS#8 or SEC1 PEM).
    ///   - certificateChain: PEM, the key's certificate first.
    public func signed(
        imageID: ImageID, tenantID: TenantID?, at signedAt: Date, privateKeyPEM: String, certificateChain: [String]
    ) throws -> ImagePackage {
        guard !isSignedOrAssigned else { throw ImagePackageError.alreadySigned }
        var metadata = metadata
        metadata.imageId = imageID
        metadata.tenantId = tenantID
        metadata.signedAt = Date(timeIntervalSince1970: signedAt.timeIntervalSince1970.rounded(.down))
        let metadataBytes = try Self.encode(metadata)
        let signature = try ImagePackageSignature.make(over: metadataBytes, privateKeyPEM: privateKeyPEM, certificateChain: certificateChain)
        return ImagePackage(
            metadataBytes: metadataBytes, metadata: metadata, manifest: manifest, payload: payload, signature: try signature.encoded())
    }

    /// An app signed with a developer's own key for sideloading onto a device in development
    /// mode: a fresh image ID, no tenant, and the key's public half in `signature.json`.
    /// No device outside development mode, or whose capability does not list the key, runs it.
    public func signedByDeveloper(privateKeyPEM: String, at signedAt: Date) throws -> ImagePackage {
        guard !isSignedOrAssigned else { throw ImagePackageError.alreadySigned }
        guard metadata.kind == .app else {
            throw ImagePackageError("image_kind_unsupported", "only apps are sideloaded; system software comes from the service")
        }
        var metadata = metadata
        metadata.imageId = ImageID.random()
        metadata.signedAt = Date(timeIntervalSince1970: signedAt.timeIntervalSince1970.rounded(.down))
        let metadataBytes = try Self.encode(metadata)
        let signature = try ImagePackageSignature.make(over: metadataBytes, privateKeyPEM: privateKeyPEM, certificateChain: [], developer: true)
        return ImagePackage(
            metadataBytes: metadataBytes, metadata: metadata, manifest: manifest, payload: payload, signature: try signature.encoded())
    }
}

/// Checks that a package was signed by the Rampart Security Service for the right owner.
///
/// The chain must lead to the pinned Rampart root and be valid at `signedAt` (a signature
/// outlives its certificate; freshness is TUF's job), `signedAt` may not lie in the future,
/// the signing certificate must be for code signing, and its name and its issuer's name must
/// belong to the image's owner: for an app, the `Rampart Image Signing <tenant>` key under
/// `Rampart Tenant CA <tenant>` of the tenant the metadata names — which must be the tenant
/// the caller expects; for system software, `Rampart System Software Signing` under the
/// intermediate. Then the signature over `metadata.json`; the reader already matched every
/// entry's digest with the metadata.
public struct ImagePackageVerifier: Sendable {
    public let root: Certificate
    /// How far `signedAt` may be ahead of the verifier's clock.
    public static let clockSkew: TimeInterval = 5 * 60

    public init(root: Certificate) { self.root = root }

    /// - Parameter tenant: for an app, the tenant the device (or caller) belongs to.
    public func verify(_ package: ImagePackage, tenant: TenantID?, now: Date) async throws {
        let metadata = package.metadata
        guard let signatureBytes = package.signature else {
            throw ImagePackageError("image_unsigned", "the package carries no signature.json: it was not signed by the service")
        }
        guard metadata.imageId != nil, let signedAt = metadata.signedAt else {
            throw ImagePackageError("image_signature_invalid", "the signed metadata lacks its imageId or signedAt")
        }
        guard signedAt <= now.addingTimeInterval(Self.clockSkew) else {
            throw ImagePackageError("image_signature_invalid", "the package says it was signed at \(signedAt), which is in the future")
        }
        let signature = try ImagePackageSignature.decode(signatureBytes)
        let (leaf, chain) = try await validatedSigner(signature, at: signedAt)
        let issuerName = chain.count > 1 ? chain[1].subject.commonName : nil
        switch metadata.kind {
        case .app:
            guard let owner = metadata.tenantId else {
                throw ImagePackageError("image_signature_invalid", "an app image must name its tenant")
            }
            guard leaf.subject.commonName == SigningNames.imageSigning(owner), issuerName == SigningNames.tenantCA(owner) else {
                throw ImagePackageError("image_foreign_tenant", "the package was not signed with tenant \(owner)'s image-signing key")
            }
            if let tenant, tenant != owner {
                throw ImagePackageError("image_foreign_tenant", "the image belongs to tenant \(owner), not to tenant \(tenant)")
            }
        case .systemSoftware:
            guard metadata.tenantId == nil, leaf.subject.commonName == SigningNames.systemSoftwareSigning,
                chain.count == 3
            else {
                throw ImagePackageError("image_signature_invalid", "system software must be signed with the service's system-software key")
            }
        }
        guard let key = P256.Signing.PublicKey(leaf.publicKey), signature.verifies(package.metadataBytes, with: key) else {
            throw ImagePackageError("image_signature_invalid", "the signature over metadata.json does not verify")
        }
    }

    /// The signing certificate and its validated chain: leading to the pinned root, valid at
    /// `time`, for code signing.
    func validatedSigner(_ signature: ImagePackageSignature, at time: Date) async throws -> (Certificate, [Certificate]) {
        let presented: [Certificate]
        do {
            presented = try signature.certificateChain.map { try Certificate(pemEncoded: $0) }
        } catch {
            throw ImagePackageError("image_signature_invalid", "the certificate chain in the signature cannot be read")
        }
        guard let leaf = presented.first, presented.count <= 4 else {
            throw ImagePackageError("image_signature_invalid", "the signature must carry the signing certificate and at most three CAs")
        }
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy(validationTime: time)
        }
        let chain: [Certificate]
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(presented.dropFirst())) {
        case .validCertificate(let validated): chain = Array(validated)
        case .couldNotValidate:
            throw ImagePackageError(
                "image_signature_invalid", "the signing certificate does not lead to the Rampart root, or was not valid when it signed")
        }
        guard (try? leaf.extensions.extendedKeyUsage?.contains(.codeSigning)) == true, !leaf.isCertificateAuthority else {
            throw ImagePackageError("image_signature_invalid", "the signing certificate is not a code-signing certificate")
        }
        return (leaf, chain)
    }

    /// Checks `bytes` were signed with tenant `owner`'s image-signing key, valid at `time`.
    func verifyTenantSignature(_ bytes: Data, _ signature: ImagePackageSignature, owner: TenantID, at time: Date) async throws {
        let (leaf, chain) = try await validatedSigner(signature, at: time)
        guard leaf.subject.commonName == SigningNames.imageSigning(owner), chain.count > 1,
            chain[1].subject.commonName == SigningNames.tenantCA(owner)
        else {
            throw ImagePackageError("image_foreign_tenant", "not signed with tenant \(owner)'s image-signing key")
        }
        guard let key = P256.Signing.PublicKey(leaf.publicKey), signature.verifies(bytes, with: key) else {
            throw ImagePackageError("image_signature_invalid", "the signature does not verify")
        }
    }
}

/// Checks a developer-signed package against the keys a development capability lists.
public enum DeveloperSignature {
    public static func verify(_ package: ImagePackage, trustedKeys: [String]) throws {
        guard let bytes = package.signature else { throw ImagePackageError("image_unsigned", "the package is not signed") }
        let signature = try ImagePackageSignature.decode(bytes)
        guard signature.certificateChain.isEmpty, let pem = signature.developerKey,
            let key = try? P256.Signing.PublicKey(pemRepresentation: pem)
        else {
            throw ImagePackageError("image_signature_invalid", "the package is not signed with a developer key")
        }
        guard trustedKeys.compactMap({ try? P256.Signing.PublicKey(pemRepresentation: $0) }).contains(where: { $0.rawRepresentation == key.rawRepresentation })
        else {
            throw ImagePackageError("developer_key_untrusted", "the package's developer key is not one this device's development capability lists")
        }
        guard package.metadata.kind == .app, package.metadata.imageId != nil, signature.verifies(package.metadataBytes, with: key) else {
            throw ImagePackageError("image_signature_invalid", "the developer signature over metadata.json does not verify")
        }
    }
}
