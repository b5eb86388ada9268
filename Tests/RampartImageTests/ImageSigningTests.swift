import Crypto
import Foundation
@testable import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing
import X509

/// Signing and verifying packages with a hierarchy shaped like the service's (root →
/// intermediate → tenant CA → image-signing key), and every way a signature can lie.
@Suite struct ImageSigningTests {
    struct Hierarchy {
        let root: CertificateAuthority
        let intermediate: CertificateAuthority

        init(now: Date = Date()) throws {
            root = try CertificateAuthority.makeRoot(commonName: "Rampart Root CA", now: now)
            intermediate = try root.issueSubordinate(
                commonName: "Rampart Intermediate CA", lifetime: .intermediate, maxPathLength: 1, now: now)
        }

        /// A tenant's CA and image-signing key: (key PEM, chain PEM).
        func signer(for tenant: TenantID, commonName: String? = nil, now: Date = Date()) throws -> (String, [String]) {
            let tenantCA = try intermediate.issueSubordinate(
                commonName: SigningNames.tenantCA(tenant), lifetime: .tenantCA, maxPathLength: 0, now: now)
            let key = P256.Signing.PrivateKey()
            let certificate = try tenantCA.issueSigningCertificate(
                commonName: commonName ?? SigningNames.imageSigning(tenant), publicKey: key.publicKey, now: now)
            return (key.pemRepresentation, [certificate, tenantCA.certificate, intermediate.certificate].map(\.pemString))
        }
    }

    static func unsigned(version: String = "1.0.0") throws -> ImagePackage {
        try ImagePackage.app(manifest: ImagePackageTests.manifest(), wasm: Wasm.command, version: version, securityVersion: 2)
    }

    static func sign(_ package: ImagePackage, tenant: TenantID, with signer: (String, [String]), at date: Date = Date()) throws -> ImagePackage {
        try package.signed(imageID: .random(), tenantID: tenant, at: date, privateKeyPEM: signer.0, certificateChain: signer.1)
    }

    func refusal(_ package: ImagePackage, root: CertificateAuthority, tenant: TenantID?, now: Date = Date()) async -> String? {
        do {
            try await ImagePackageVerifier(root: root.certificate).verify(package, tenant: tenant, now: now)
            return nil
        } catch let error as ImagePackageError {
            return error.code
        } catch {
            return "unexpected: \(error)"
        }
    }

    @Test func aSignedPackageVerifiesAfterARoundTrip() async throws {
        let hierarchy = try Hierarchy()
        let tenant = TenantID.random()
        let signed = try Self.sign(try Self.unsigned(), tenant: tenant, with: try hierarchy.signer(for: tenant))
        let read = try ImagePackage(zipped: try signed.zipped())
        #expect(read.metadata.tenantId == tenant && read.metadata.imageId != nil && read.metadata.signedAt != nil)
        #expect(await refusal(read, root: hierarchy.root, tenant: tenant) == nil)
        #expect(await refusal(read, root: hierarchy.root, tenant: nil) == nil)
        // Only the service signs: a signed package cannot be signed (or uploaded) again.
        #expect(throws: ImagePackageError("package_already_signed", "")) {
            try Self.sign(read, tenant: tenant, with: try hierarchy.signer(for: tenant))
        }
        #expect(throws: ImagePackageError("package_already_signed", "")) { try ImagePackage(uploadedApp: try signed.zipped()) }
    }

    @Test func everyLieIsRefusedWithItsReason() async throws {
        let hierarchy = try Hierarchy()
        let tenant = TenantID.random(), other = TenantID.random()
        let signer = try hierarchy.signer(for: tenant)
        let signed = try Self.sign(try Self.unsigned(), tenant: tenant, with: signer)

        // Unsigned.
        #expect(await refusal(try Self.unsigned(), root: hierarchy.root, tenant: tenant) == "image_unsigned")
        // The right package, but the device belongs to another tenant.
        #expect(await refusal(signed, root: hierarchy.root, tenant: other) == "image_foreign_tenant")
        // Another tenant's key signing metadata that claims this tenant.
        var forged = try Self.unsigned().signed(
            imageID: .random(), tenantID: tenant, at: Date(), privateKeyPEM: try hierarchy.signer(for: other).0,
            certificateChain: try hierarchy.signer(for: other).1)
        #expect(await refusal(forged, root: hierarchy.root, tenant: tenant) == "image_foreign_tenant")
        // A key of this tenant's CA but not its image-signing key.
        forged = try Self.sign(try Self.unsigned(), tenant: tenant, with: try hierarchy.signer(for: tenant, commonName: "Something Else"))
        #expect(await refusal(forged, root: hierarchy.root, tenant: tenant) == "image_foreign_tenant")
        // A look-alike hierarchy that does not lead to the pinned root.
        let impostor = try Hierarchy()
        forged = try Self.sign(try Self.unsigned(), tenant: tenant, with: try impostor.signer(for: tenant))
        #expect(await refusal(forged, root: hierarchy.root, tenant: tenant) == "image_signature_invalid")
        // Metadata changed after signing (a higher security version), signature kept.
        var metadata = signed.metadata
        metadata.securityVersion = 9
        let altered = ImagePackage(
            metadataBytes: try ImagePackage.encode(metadata), metadata: metadata, manifest: signed.manifest,
            payload: signed.payload, signature: signed.signature)
        #expect(await refusal(altered, root: hierarchy.root, tenant: tenant) == "image_signature_invalid")
        // A signature made by the key in the chain, but over other bytes.
        let other2 = try Self.sign(try Self.unsigned(version: "2.0.0"), tenant: tenant, with: signer)
        let swapped = ImagePackage(
            metadataBytes: signed.metadataBytes, metadata: signed.metadata, manifest: signed.manifest, payload: signed.payload,
            signature: other2.signature)
        #expect(await refusal(swapped, root: hierarchy.root, tenant: tenant) == "image_signature_invalid")
        // Signed "in the future".
        let early = try Self.sign(try Self.unsigned(), tenant: tenant, with: signer, at: Date().addingTimeInterval(3600))
        #expect(await refusal(early, root: hierarchy.root, tenant: tenant) == "image_signature_invalid")
        // A certificate that is not for code signing (a device's client certificate), even
        // from the right tenant CA.
        let tenantCA = try hierarchy.intermediate.issueSubordinate(
            commonName: SigningNames.tenantCA(tenant), lifetime: .tenantCA, maxPathLength: 0, now: Date())
        let key = P256.Signing.PrivateKey()
        let client = try tenantCA.issueDeviceCertificate(
            deviceID: SigningNames.imageSigning(tenant), publicKey: ClientPublicKey(key.publicKey),
            attestation: DiceTcbInfo(vendor: "Rampart", model: "test", version: "1", securityVersion: 1, layer: 1, fwids: []), now: Date())
        forged = try Self.unsigned().signed(
            imageID: .random(), tenantID: tenant, at: Date(), privateKeyPEM: key.pemRepresentation,
            certificateChain: [client.pemString] + [tenantCA.certificate, hierarchy.intermediate.certificate].map(\.pemString))
        #expect(await refusal(forged, root: hierarchy.root, tenant: tenant) == "image_signature_invalid")
        // System software signed by a tenant's key (a tenant trying to ship a runtime).
        let runtime = try ImagePackage.systemSoftware(executable: Data([0x7f, 0x45, 0x4c, 0x46, 1]), version: "1.0.0", securityVersion: 1)
        forged = try runtime.signed(imageID: .random(), tenantID: nil, at: Date(), privateKeyPEM: signer.0, certificateChain: signer.1)
        #expect(await refusal(forged, root: hierarchy.root, tenant: nil) == "image_signature_invalid")
        // An app signed by the system-software key: it names no tenant and no tenant key.
        let serviceKey = P256.Signing.PrivateKey()
        let serviceCertificate = try hierarchy.intermediate.issueSigningCertificate(
            commonName: SigningNames.systemSoftwareSigning, publicKey: serviceKey.publicKey, now: Date())
        let serviceChain = [serviceCertificate, hierarchy.intermediate.certificate].map(\.pemString)
        let genuineRuntime = try runtime.signed(
            imageID: .random(), tenantID: nil, at: Date(), privateKeyPEM: serviceKey.pemRepresentation, certificateChain: serviceChain)
        #expect(await refusal(genuineRuntime, root: hierarchy.root, tenant: tenant) == nil)
        forged = try Self.unsigned().signed(
            imageID: .random(), tenantID: tenant, at: Date(), privateKeyPEM: serviceKey.pemRepresentation, certificateChain: serviceChain)
        #expect(await refusal(forged, root: hierarchy.root, tenant: tenant) == "image_foreign_tenant")
        // Signed while the signing certificate was not yet valid: validity is judged at signedAt.
        let late = try hierarchy.signer(for: tenant, now: Date().addingTimeInterval(86_400 * 3))
        forged = try Self.sign(try Self.unsigned(), tenant: tenant, with: late)
        #expect(await refusal(forged, root: hierarchy.root, tenant: tenant) == "image_signature_invalid")
    }

    @Test func aSignatureOutlivesItsCertificate() async throws {
        let hierarchy = try Hierarchy()
        let tenant = TenantID.random()
        let signed = try Self.sign(try Self.unsigned(), tenant: tenant, with: try hierarchy.signer(for: tenant))
        // Two years on, the signing certificate has expired; the package is still genuine
        // (freshness is the update metadata's job, not the signature's).
        let later = Date().addingTimeInterval(2 * 365 * 86_400)
        #expect(await refusal(signed, root: hierarchy.root, tenant: tenant, now: later) == nil)
    }
}
