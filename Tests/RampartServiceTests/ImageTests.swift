import Foundation
import HTTPTypes
import Crypto
@testable import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import SwiftASN1
@testable import RampartService
import Testing
import X509

/// Images: uploaded unsigned, checked, signed with the tenant's key, immutable.
@Suite struct ImageTests {
    @Test(arguments: engines)
    func anAddedImageIsSignedForItsTenantAndImmutable(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let contoso = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let fabrikam = try await client.createTenant("Fabrikam", operatorToken: harness.operatorToken)
                let tenant = contoso.tenant.id
                let connie = try await client.user("connie", .contributor, tenant: tenant, adminToken: contoso.token.secret)

                let added = try await client.addImage(version: "1.0.0", tenant: tenant, token: connie)
                #expect(added.status == .created, "\(added.text)")
                let image = try added.decode(ImageDocument.self)
                #expect(image.tenantId == tenant && image.kind == .app && image.componentId == TestApp.componentId)
                #expect(image.version == "1.0.0" && image.securityVersion == 1 && image.createdBy == "connie")

                // Read back by a Reader: listed, shown, and its package is the signed one.
                let reggie = try await client.user("reggie", .reader, tenant: tenant, adminToken: contoso.token.secret)
                let listed = try await client.call(.get, "/v1/tenants/\(tenant)/images", token: reggie)
                #expect(try listed.decode(ListDocument<ImageDocument>.self).items == [image])
                let filtered = try await client.call(
                    .get, "/v1/tenants/\(tenant)/images?componentId=\(ComponentID.random())", token: reggie)
                #expect(try filtered.decode(ListDocument<ImageDocument>.self).items.isEmpty)
                #expect(try await client.call(.get, "/v1/tenants/\(tenant)/images/\(image.id)", token: reggie)
                    .decode(ImageDocument.self) == image)
                let download = try await client.call(.get, "/v1/tenants/\(tenant)/images/\(image.id)/package", token: reggie)
                #expect(download.status == .ok)
                #expect(download.body.count == image.length)
                #expect(Data(SHA256Hex.of(download.body).utf8) == Data(image.sha256.utf8))
                let package = try ImagePackage(zipped: download.body)
                #expect(package.metadata.imageId == image.id && package.metadata.tenantId == tenant)

                // It verifies as a device of this tenant checks it, and not for another tenant.
                let verifier = ImagePackageVerifier(root: harness.api.pki.root.certificate)
                try await verifier.verify(package, tenant: tenant, now: harness.clock.now)
                await #expect(throws: ImagePackageError("image_foreign_tenant", "")) {
                    try await verifier.verify(package, tenant: fabrikam.tenant.id, now: harness.clock.now)
                }
                // The chain passes a verifier we did not write.
                let signature = try JSONDecoder.rampart.decode(ImagePackageSignature.self, from: package.signature!)
                let chain = try signature.certificateChain.map { try Certificate(pemEncoded: $0) }
                #expect(try await OpenSSL.verify(chain + [harness.api.pki.root.certificate]))
                #expect(chain[0].subject.commonName == SigningNames.imageSigning(tenant))

                // One key per tenant: the second image is signed by the same certificate.
                let second = try await client.addImage(version: "1.1.0", tenant: tenant, token: connie).decode(ImageDocument.self)
                let secondPackage = try ImagePackage(
                    zipped: try await client.call(.get, "/v1/tenants/\(tenant)/images/\(second.id)/package", token: reggie).body)
                let secondChain = try JSONDecoder.rampart.decode(ImagePackageSignature.self, from: secondPackage.signature!)
                #expect(secondChain.certificateChain == signature.certificateChain)

                // Immutable: the same component and version again is a conflict, and nothing changed.
                let again = try await client.addImage(version: "1.0.0", tenant: tenant, token: connie)
                #expect(again.status == .conflict && again.error?.error == "image_exists", "\(again.text)")
                // The signed package cannot be uploaded as if it were new.
                let resent = try await client.upload("/v1/tenants/\(tenant)/images", token: connie, bytes: download.body)
                #expect(resent.status == .badRequest && resent.error?.error == "package_already_signed", "\(resent.text)")
                #expect(try await client.call(.get, "/v1/tenants/\(tenant)/images", token: reggie)
                    .decode(ListDocument<ImageDocument>.self).items.map(\.id).sorted(by: { $0.description < $1.description })
                    == [image.id, second.id].sorted(by: { $0.description < $1.description }))

                // The other tenant may add the same component and version: images are per tenant.
                let theirs = try await client.addImage(version: "1.0.0", tenant: fabrikam.tenant.id, token: fabrikam.token.secret)
                #expect(theirs.status == .created)
                #expect(try await client.call(.get, "/v1/tenants/\(fabrikam.tenant.id)/images/\(image.id)", token: fabrikam.token.secret)
                    .status == .notFound)

                // Every addition and refusal is in the audit log.
                let audit = try await client.call(.get, "/v1/tenants/\(tenant)/audit", token: contoso.token.secret).text
                #expect(audit.contains("image.add") && audit.contains("image_exists"))
            }
        }
    }

    @Test func uploadsThatAreNotValidAppPackagesAreRefusedAndNothingIsStored() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let token = created.token.secret
                let path = "/v1/tenants/\(tenant)/images"
                func refusal(_ bytes: Data, contentType: String = "application/zip") async throws -> (Int, String?) {
                    let answer = try await client.upload(path, token: token, bytes: bytes, contentType: contentType)
                    return (Int(answer.status.code), answer.error?.error)
                }
                let good = try ImagePackage.app(manifest: TestApp.manifest, wasm: Wasm.command, version: "1.0.0", securityVersion: 1)
                #expect(try await refusal(try good.zipped(), contentType: "application/json") == (415, "unsupported_media_type"))
                #expect(try await refusal(Data("not a zip".utf8)) == (400, "package_invalid"))
                #expect(try await refusal(Data()) == (400, "package_invalid"))
                // One byte of the payload changed inside the ZIP: the CRC no longer matches.
                var zipped = try good.zipped()
                let at = zipped.range(of: Wasm.command)!.lowerBound + 9
                zipped[at] ^= 0x01
                #expect(try await refusal(zipped) == (400, "package_invalid"))
                // A module that is not an app (no _start), correctly described by its metadata.
                var metadata = good.metadata
                metadata.payload = ImagePackage.digest(Wasm.library)
                let library = ImagePackage(
                    metadataBytes: try ImagePackage.encode(metadata), metadata: metadata, manifest: good.manifest,
                    payload: Wasm.library, signature: nil)
                #expect(try await refusal(try library.zipped()) == (400, "wasm_no_entry_point"))
                // Larger than any app package may be, refused before it is buffered whole.
                let huge = Data(count: ImagePackage.Limits().app + 512 << 10)
                #expect(try await refusal(huge) == (413, "body_too_large"))
                let images = try await client.call(.get, path, token: token).decode(ListDocument<ImageDocument>.self).items
                #expect(images.isEmpty)
                let blobs = try await harness.database.read { db in try await db.query("SELECT COUNT(*) AS n FROM blob_chunks") }
                #expect(try blobs.first?.int("n") == 0)
            }
        }
    }

    @Test func signingKeysAreSealedOnPostgresAndKeptInFilesOnSQLite() async throws {
        try await ServiceHarness.with(.postgres) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                #expect(try await client.addImage(version: "1.0.0", tenant: created.tenant.id, token: created.token.secret).status == .created)
                let rows = try await harness.database.read { db in try await db.query("SELECT id, sealed_key FROM signing_keys") }
                #expect(rows.count == 1)
                let sealed = try #require(try rows[0].blob("sealed_key"))
                #expect(!String(decoding: sealed, as: UTF8.self).contains("PRIVATE KEY"))
                // A sealed key moved onto another row does not open.
                let other = SQLRow(values: ["id": .text(UUID().uuidString.lowercased()), "sealed_key": .blob(sealed)])
                #expect(throws: (any Error).self) { try harness.api.pki.custody.keyPEM(of: other) }
            }
        }
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                #expect(try await client.addImage(version: "1.0.0", tenant: created.tenant.id, token: created.token.secret).status == .created)
                let rows = try await harness.database.read { db in try await db.query("SELECT id, sealed_key FROM signing_keys") }
                #expect(rows.count == 1)
                #expect(try rows[0].blob("sealed_key") == nil)
                let path = "\(harness.dataDirectory)/pki/\(try rows[0].text("id")).key.pem"
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                #expect((attributes[.posixPermissions] as? Int) == 0o600)
            }
        }
    }
}

enum SHA256Hex {
    static func of(_ data: Data) -> String { SHA256.hash(data: data).hexString }
}
