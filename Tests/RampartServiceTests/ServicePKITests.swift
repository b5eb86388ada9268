import Crypto
import Foundation
import RampartDevice
import RampartTestSupport
import HTTPTypes
import NIOSSL
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
                #expect(try await OpenSSL.verify(chain))
            }
        }
    }
}

/// Runs `openssl verify`, a verifier we did not write, on a chain (leaf first, root last).
enum OpenSSL {
    static func verify(_ chain: [Certificate], purpose: String? = nil) async throws -> Bool {
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
        return try await Command.run("/usr/bin/openssl", arguments).status == 0
    }

    /// `openssl x509 -text` of a certificate.
    static func text(_ certificate: Certificate) async throws -> String {
        let directory = try ServiceHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try certificate.pemString.write(toFile: "\(directory)/c.pem", atomically: true, encoding: .utf8)
        return try await Command.run("/usr/bin/openssl", ["x509", "-noout", "-text", "-in", "\(directory)/c.pem"]).output
    }
}

@Suite struct ServerTLSTests {
    /// `--tls-cert/--tls-key`: the operator's certificate is served instead of a generated one.
    @Test func operatorCertificateIsUsed() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            let directory = try ServiceHarness.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let ownCA = try CertificateAuthority.makeRoot(commonName: "Operator CA", now: Date())
            let key = P256.Signing.PrivateKey()
            let leaf = try ownCA.issueServerCertificate(
                hostnames: ["rampart.example"], ipAddresses: [], publicKey: key.publicKey, now: Date())
            try (leaf.pemString + ownCA.certificate.pemString).write(toFile: "\(directory)/cert.pem", atomically: true, encoding: .utf8)
            try key.pemRepresentation.write(toFile: "\(directory)/key.pem", atomically: true, encoding: .utf8)

            var configuration = harness.service.configuration
            configuration.tlsCertificatePath = "\(directory)/cert.pem"
            configuration.tlsKeyPath = "\(directory)/key.pem"
            let tls = try ServerTLS.make(configuration: configuration, pki: harness.api.pki, now: Date())
            #expect(tls.certificateFingerprint == leaf.sha256Fingerprint)
            #expect(!tls.generated)
            #expect(tls.configuration.minimumTLSVersion == .tlsv13)

            configuration.tlsKeyPath = nil
            #expect(throws: ConfigurationError.self) {
                _ = try ServerTLS.make(configuration: configuration, pki: harness.api.pki, now: Date())
            }
            configuration.tlsKeyPath = "\(directory)/missing.pem"
            #expect(throws: ConfigurationError.self) {
                _ = try ServerTLS.make(configuration: configuration, pki: harness.api.pki, now: Date())
            }
        }
    }

    /// Without one, the service issues itself a certificate from its own CA, reuses it on
    /// the next start, and names localhost and the configured hostnames.
    @Test func generatedCertificateChainsToTheServiceRoot() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            let chainPEM = try String(contentsOfFile: "\(harness.dataDirectory)/tls/server.pem", encoding: .utf8)
            let chain = try certificates(fromPEMBundle: chainPEM)
            #expect(try await OpenSSL.verify(chain + [harness.api.pki.root.certificate], purpose: "sslserver"))
            let again = try ServerTLS.make(configuration: harness.service.configuration, pki: harness.api.pki, now: Date())
            #expect(!again.generated)
            #expect(again.certificateFingerprint == chain[0].sha256Fingerprint)
            var renamed = harness.service.configuration
            renamed.hostnames = ["rampart.example"]
            let reissued = try ServerTLS.make(configuration: renamed, pki: harness.api.pki, now: Date())
            #expect(reissued.generated)
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(harness.dataDirectory)/tls/server.key")
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
    }

    @Test func sqliteRunsInWriteAheadLogMode() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            let mode = try await harness.database.read { db in try await db.query("PRAGMA journal_mode", []) }
            #expect(try mode.first?.text("journal_mode") == "wal")
        }
    }
}
