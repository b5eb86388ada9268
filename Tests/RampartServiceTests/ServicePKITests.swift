import Foundation
import RampartTestSupport
import HTTPTypes
import RampartModel
import RampartPKI
@testable import RampartService
import Testing
import X509

@Suite struct ServicePKITests {
    /// A tenant CA is renewed when fewer than 90 days remain; the new one issues 45 days
    /// later; until the old one expires the chain carries both.
    @Test(arguments: engines)
    func tenantCARotation(engine: DatabaseEngine) async throws {
        let clock = TestClock()
        try await ServiceHarness.with(engine, clock: clock) { harness in
            let created = try await harness.test { client in
                try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
            }
            let tenant = created.tenant.id
            let pki = harness.api.pki
            func chain() async throws -> [Certificate] {
                try await harness.database.read { db in
                    try certificates(fromPEMBundle: try await pki.chainPEM(for: tenant, db: db, now: clock.now))
                }
            }
            func issuing() async throws -> Certificate {
                try await harness.database.read { db in try await pki.issuingCA(for: tenant, db: db, now: clock.now).certificate }
            }
            let original = try await issuing()
            #expect(try await chain().count == 3)
            #expect(try await pki.rotateTenantCAs(database: harness.database, now: clock.now).isEmpty)

            // 91 days before expiry: nothing yet.
            clock.advance(days: original.notValidAfter.timeIntervalSince(clock.now) / 86_400 - 91)
            #expect(try await pki.rotateTenantCAs(database: harness.database, now: clock.now).isEmpty)

            // 89 days before expiry: renewed once, however often the job runs.
            clock.advance(days: 2)
            #expect(try await pki.rotateTenantCAs(database: harness.database, now: clock.now) == [tenant])
            #expect(try await pki.rotateTenantCAs(database: harness.database, now: clock.now).isEmpty)
            let during = try await chain()
            #expect(during.count == 4)
            #expect(try await issuing() == original)

            // 45 days later the new CA issues; the old one is still in the chain.
            clock.advance(days: 46)
            let renewed = try await issuing()
            #expect(renewed != original)
            #expect(renewed.notValidAfter > original.notValidAfter)
            #expect(try await chain().contains(original))

            // Once the old one expires, the chain carries only the new one.
            clock.advance(days: 44)
            let after = try await chain()
            #expect(after.count == 3)
            #expect(!after.contains(original))
            #expect(after.first == renewed)
        }
    }

    @Test(arguments: engines)
    func caKeysAreKeptAsTheEngineRequires(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            let rows = try await harness.database.read { db in
                try await db.query("SELECT id, sealed_key FROM certificate_authorities", [])
            }
            #expect(rows.count == 2)
            for row in rows {
                let id = try row.text("id")
                let path = "\(harness.dataDirectory)/pki/\(id).key.pem"
                switch engine {
                case .sqlite:
                    #expect(try row.blob("sealed_key") == nil)
                    let attributes = try FileManager.default.attributesOfItem(atPath: path)
                    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
                case .postgres:
                    let sealed = try #require(try row.blob("sealed_key"))
                    #expect(!String(decoding: sealed, as: UTF8.self).contains("PRIVATE KEY"))
                    #expect(!FileManager.default.fileExists(atPath: path))
                }
            }
        }
    }

    /// A node given the wrong key-encryption key cannot open the CA keys and says so.
    @Test func wrongKeyEncryptionKeyIsRefused() async throws {
        try await ServiceHarness.with(.postgres) { harness in
            var configuration = harness.service.configuration
            configuration.keyEncryptionKey = String(repeating: "cd", count: 32)
            await #expect(throws: PKIError.sealedKeyInvalid("")) {
                _ = try await SecurityService.prepare(configuration, database: harness.database, logger: ServiceHarness.logger)
            }
        }
    }

    @Test func chainIsServedAsPEMAndVerifies() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let answer = try await client.call(.get, "/v1/tenants/\(created.tenant.id)/ca/chain", token: created.token.secret)
                #expect(answer.status == .ok)
                let chain = try certificates(fromPEMBundle: answer.text)
                #expect(chain.count == 3)
                #expect(chain[0].issuer == chain[1].subject)
                #expect(chain[1].issuer == chain[2].subject)
                #expect(chain[2].issuer == chain[2].subject)
                #expect(try OpenSSL.verify(chain))
            }
        }
    }
}

/// Runs `openssl verify`, a verifier we did not write, on a chain (leaf first, root last).
enum OpenSSL {
    static func verify(_ chain: [Certificate], purpose: String? = nil) throws -> Bool {
        let directory = try ServiceHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let leaf = "\(directory)/leaf.pem"
        let untrusted = "\(directory)/untrusted.pem"
        let root = "\(directory)/root.pem"
        try chain[0].pemString.write(toFile: leaf, atomically: true, encoding: .utf8)
        try chain[1..<(chain.count - 1)].map(\.pemString).joined().write(toFile: untrusted, atomically: true, encoding: .utf8)
        try chain[chain.count - 1].pemString.write(toFile: root, atomically: true, encoding: .utf8)
        let arguments = ["verify", "-CAfile", root] + (chain.count > 2 ? ["-untrusted", untrusted] : [])
            + (purpose.map { ["-purpose", $0] } ?? []) + [leaf]
        return try Command.run("/usr/bin/openssl", arguments).status == 0
    }
}
