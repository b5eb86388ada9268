import Foundation
import HTTPTypes
@testable import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
@testable import RampartService
import Testing

/// System software published as signed packages: deliverable releases on OS feeds.
@Suite struct SystemSoftwareTests {
    /// An ELF-looking executable (the header is all the service checks), distinct per `tag`.
    static func executable(_ tag: String) -> Data { Data([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]) + Data(tag.utf8) }

    static func package(_ tag: String, version: String, securityVersion: Int = 1) throws -> Data {
        try ImagePackage.systemSoftware(executable: executable(tag), version: version, securityVersion: securityVersion).zipped()
    }

    @Test(arguments: engines)
    func aPublishedPackageIsSignedByTheServiceAndMakesTheReleaseDeliverable(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let op = harness.operatorToken
                let published = try await client.upload(
                    "/v1/os/releases/package?feed=retail-eval", token: op, bytes: try Self.package("a", version: "0.2.0", securityVersion: 3))
                #expect(published.status == .created, "\(published.text)")
                let release = try published.decode(SystemSoftwareRelease.self)
                #expect(release.feed == .retailEval && release.securityVersion == 3 && release.version == "0.2.0")
                #expect(release.measurement == SHA256Hex.of(Self.executable("a")))
                let imageID = try #require(release.imageId)

                // The stored package verifies as system software signed by the service.
                let (row, bytes) = try await harness.database.read { db in
                    let row = try await db.query("SELECT * FROM images WHERE id = $1", .of(imageID)).first!
                    return (row, try await db.blob(sha256: try row.text("sha256"))!)
                }
                #expect(try row.optionalText("tenant_id") == nil && (try row.text("kind")) == "system-software")
                let package = try ImagePackage(zipped: bytes)
                #expect(package.metadata.imageId == imageID && package.metadata.componentId == .runtime)
                try await ImagePackageVerifier(root: harness.api.pki.root.certificate).verify(package, tenant: nil, now: harness.clock.now)

                // A reference value published first gets its package when the same bytes come.
                let reference = try await client.call(
                    .post, "/v1/os/releases", token: op,
                    json: PublishReleaseRequest(version: "0.3.0", measurement: SHA256Hex.of(Self.executable("b")), securityVersion: 1))
                #expect(try reference.decode(SystemSoftwareRelease.self).imageId == nil)
                let attached = try await client.upload("/v1/os/releases/package", token: op, bytes: try Self.package("b", version: "0.3.0"))
                #expect(attached.status == .ok, "\(attached.text)")
                #expect(try attached.decode(SystemSoftwareRelease.self).imageId != nil)

                // Any other clash is refused and changes nothing.
                for (bytes, why) in [
                    (try Self.package("c", version: "0.3.0"), "another executable under a published version"),
                    (try Self.package("b", version: "0.3.0"), "the same package twice"),
                    (try Self.package("a", version: "0.9.0"), "a published executable under a new version"),
                ] {
                    let clash = try await client.upload("/v1/os/releases/package", token: op, bytes: bytes)
                    #expect(clash.status == .conflict && clash.error?.error == "release_exists", "\(why): \(clash.text)")
                }
                let releases = try await client.call(.get, "/v1/os/releases", token: op).decode(ListDocument<SystemSoftwareRelease>.self)
                #expect(releases.items.map(\.version) == ["0.2.0", "0.3.0"])
                let images = try await harness.database.read { db in try await db.query("SELECT id FROM images") }
                #expect(images.count == 2)
            }
        }
    }

    @Test func whatIsNotARuntimePackageIsRefusedAndOnlyTheOperatorPublishes() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let op = harness.operatorToken
                let created = try await client.createTenant("Contoso", operatorToken: op)
                let notELF = try ImagePackage.systemSoftware(executable: Self.executable("x"), version: "1.0.0", securityVersion: 1)
                var metadata = notELF.metadata
                let script = Data("#!/bin/sh\necho rampartd\n".utf8)
                metadata.payload = ImageEntryDigest(sha256: SHA256Hex.of(script), length: script.count)
                let forged = try ImagePackage(
                    metadataBytes: try ImagePackage.encode(metadata), metadata: metadata, manifest: nil, payload: script, signature: nil
                ).zipped()
                let refusal = try await client.upload("/v1/os/releases/package", token: op, bytes: forged)
                #expect(refusal.status == .badRequest && refusal.error?.error == "payload_not_executable", "\(refusal.text)")

                let app = try ImagePackage.app(manifest: TestApp.manifest, wasm: Wasm.command, version: "1.0.0", securityVersion: 1)
                let wrongKind = try await client.upload("/v1/os/releases/package", token: op, bytes: try app.zipped())
                #expect(wrongKind.error?.error == "image_kind_unsupported", "\(wrongKind.text)")
                let intoTenant = try await client.upload(
                    "/v1/tenants/\(created.tenant.id)/images", token: created.token.secret, bytes: try Self.package("y", version: "1.0.0"))
                #expect(intoTenant.error?.error == "image_kind_unsupported", "\(intoTenant.text)")

                let bad = try await client.upload("/v1/os/releases/package?feed=beta", token: op, bytes: try Self.package("z", version: "1.0.0"))
                #expect(bad.status == .badRequest && bad.error?.error == "invalid_field", "\(bad.text)")

                let tenantAdmin = try await client.upload(
                    "/v1/os/releases/package", token: created.token.secret, bytes: try Self.package("z", version: "1.0.0"))
                #expect(tenantAdmin.status == .forbidden, "\(tenantAdmin.text)")
                #expect(try await client.call(.get, "/v1/os/releases", token: op).decode(ListDocument<SystemSoftwareRelease>.self).items.isEmpty)
            }
        }
    }
}
