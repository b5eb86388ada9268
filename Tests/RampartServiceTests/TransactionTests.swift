import Foundation
import HTTPTypes
import RampartModel
@testable import RampartService
import Testing

/// A failure part-way through a request leaves nothing half-written.
@Suite struct TransactionTests {
    /// A real database failure, forced by a trigger on the fourth of a product's five
    /// default device groups, rolls back the product and the three groups before it.
    @Test(arguments: engines)
    func failedProductCreationLeavesNoRows(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.database.transaction { db in
                switch engine {
                case .sqlite:
                    try await db.query(
                        "CREATE TRIGGER fail_production BEFORE INSERT ON device_groups WHEN NEW.name = 'Production' BEGIN SELECT RAISE(ABORT, 'forced failure'); END",
                        [])
                case .postgres:
                    try await db.query(
                        "CREATE FUNCTION fail_production() RETURNS trigger AS $$ BEGIN IF NEW.name = 'Production' THEN RAISE EXCEPTION 'forced failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                        [])
                    try await db.query(
                        "CREATE TRIGGER fail_production BEFORE INSERT ON device_groups FOR EACH ROW EXECUTE FUNCTION fail_production()",
                        [])
                }
            }
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let answer = try await client.call(
                    .post, "/v1/tenants/\(created.tenant.id)/products", token: created.token.secret,
                    json: CreateProductRequest(name: "Thermostat"))
                #expect(answer.status == .internalServerError)
                #expect(answer.error?.error == "internal_error")
                let counts = try await harness.database.read { db in
                    (
                        try await db.query("SELECT COUNT(*) AS n FROM products", []).first!.int("n"),
                        try await db.query("SELECT COUNT(*) AS n FROM device_groups", []).first!.int("n")
                    )
                }
                #expect(counts.0 == 0)
                #expect(counts.1 == 0)
                // The failure itself is audited.
                let audit = try await client.call(.get, "/v1/tenants/\(created.tenant.id)/audit", token: created.token.secret)
                    .decode(ListDocument<AuditEntryDocument>.self).items
                #expect(audit.contains { $0.action == "product.create" && $0.outcome == "internal_error" })
            }
        }
    }

    @Test(arguments: engines)
    func migrationsRunOnceAndAreRecorded(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            let again = try await Schema.migrate(harness.database)
            #expect(again.isEmpty)
            let versions = try await harness.database.read { db in
                try await db.query("SELECT version FROM schema_migrations ORDER BY version", []).map { try $0.int("version") }
            }
            #expect(versions == Schema.migrations.map(\.version))
        }
    }
}
