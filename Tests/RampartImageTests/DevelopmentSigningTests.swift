import Crypto
import Foundation
@testable import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing
import X509

/// Capability files and developer-signed packages, attacked: another device's capability, a
/// tampered one, an expired one, another tenant's; a package signed by an unlisted key, or
/// altered after signing; a developer package presented as a cloud image.
@Suite struct DevelopmentSigningTests {
    let hierarchy: ImageSigningTests.Hierarchy
    let tenant = TenantID.random()
    let device = DeviceID(String(repeating: "ab", count: 32))!
    let developer = P256.Signing.PrivateKey()

    init() throws { hierarchy = try ImageSigningTests.Hierarchy() }

    func capability(device: DeviceID? = nil, tenant: TenantID? = nil, issued: Date = Date(), days: Double = 30) throws -> CapabilityFile {
        let owner = tenant ?? self.tenant
        let signer = try hierarchy.signer(for: owner)
        return try CapabilityFile.sign(
            DeviceCapability(
                deviceId: device ?? self.device, tenantId: owner, issuedAt: issued, expiresAt: issued.addingTimeInterval(days * 86_400),
                developerKeys: [developer.publicKey.pemRepresentation]),
            privateKeyPEM: signer.0, certificateChain: signer.1)
    }

    func refusal(_ file: CapabilityFile, now: Date = Date()) async -> String? {
        do {
            _ = try await file.verify(root: hierarchy.root.certificate, device: device, tenant: tenant, now: now)
            return nil
        } catch let error as ImagePackageError {
            return error.code
        } catch {
            return "unexpected: \(error)"
        }
    }

    @Test func aCapabilityIsForOneDeviceOfOneTenantForAWhile() async throws {
        #expect(await refusal(try capability()) == nil)
        #expect(await refusal(try capability(device: DeviceID(String(repeating: "cd", count: 32))!)) == "capability_foreign_device")
        #expect(await refusal(try capability(), now: Date().addingTimeInterval(31 * 86_400)) == "capability_expired")
        // Signed by another tenant's key, naming this tenant or that one: refused either way.
        let other = TenantID.random()
        var forged = try capability(tenant: other)
        #expect(await refusal(forged) == "capability_signature_invalid")
        let theirs = try hierarchy.signer(for: other)
        let bytes = try #require(Data(base64Encoded: try capability().document))
        forged = CapabilityFile(
            document: bytes.base64EncodedString(),
            signature: try ImagePackageSignature.make(over: bytes, privateKeyPEM: theirs.0, certificateChain: theirs.1))
        #expect(await refusal(forged) == "capability_signature_invalid")
        // A longer life written into the signed document: the signature no longer verifies.
        var tampered = try capability(days: 1)
        var document = try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: tampered.document))) as! [String: Any]
        document["expiresAt"] = "2099-01-01T00:00:00Z"
        tampered.document = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]).base64EncodedString()
        #expect(await refusal(tampered) == "capability_signature_invalid")
        #expect(await refusal(try capability(days: 1)) == nil)
    }

    @Test func developerPackagesNeedAListedKey() throws {
        let package = try ImageSigningTests.unsigned().signedByDeveloper(privateKeyPEM: developer.pemRepresentation, at: Date())
        let read = try ImagePackage(zipped: try package.zipped())
        try DeveloperSignature.verify(read, trustedKeys: [developer.publicKey.pemRepresentation])
        #expect(throws: ImagePackageError("developer_key_untrusted", "")) {
            try DeveloperSignature.verify(read, trustedKeys: [P256.Signing.PrivateKey().publicKey.pemRepresentation])
        }
        // A package re-signed by an outsider with the listed key's name copied in: the signature fails.
        let outsider = try ImageSigningTests.unsigned(version: "6.6.6").signedByDeveloper(
            privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation, at: Date())
        var signature = try JSONDecoder.rampart.decode(ImagePackageSignature.self, from: try #require(outsider.signature))
        signature.developerKey = developer.publicKey.pemRepresentation
        let spoofed = ImagePackage(
            metadataBytes: outsider.metadataBytes, metadata: outsider.metadata, manifest: outsider.manifest, payload: outsider.payload,
            signature: try signature.encoded())
        #expect(throws: ImagePackageError("image_signature_invalid", "")) {
            try DeveloperSignature.verify(spoofed, trustedKeys: [developer.publicKey.pemRepresentation])
        }
    }

    @Test func aDeveloperPackageIsNoCloudImage() async throws {
        let package = try ImageSigningTests.unsigned().signedByDeveloper(privateKeyPEM: developer.pemRepresentation, at: Date())
        await #expect(throws: ImagePackageError("image_signature_invalid", "")) {
            try await ImagePackageVerifier(root: hierarchy.root.certificate).verify(package, tenant: tenant, now: Date())
        }
    }
}
