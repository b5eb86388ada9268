import Foundation
import HTTPTypes
import RampartModel
@testable import RampartService
import Testing

@Suite struct TokenTests {
    @Test(arguments: engines)
    func revokedExpiredAndRemovedTokensStopWorking(engine: DatabaseEngine) async throws {
        let clock = TestClock()
        try await ServiceHarness.with(engine, clock: clock) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let admin = created.token.secret
                let reader = try await client.user("reggie", .reader, tenant: tenant, adminToken: admin)
                #expect(try await client.call(.get, "/v1/whoami", token: reader).status == .ok)

                // Revoked: refused at once.
                let issued = try await client.call(
                    .post, "/v1/tenants/\(tenant)/tokens", token: reader, json: CreateTokenRequest(name: "laptop")
                ).decode(IssuedToken.self)
                #expect(try await client.call(.get, "/v1/whoami", token: issued.secret).status == .ok)
                let revoked = try await client.call(.delete, "/v1/tenants/\(tenant)/tokens/\(issued.token.id)", token: reader)
                #expect(revoked.status == .noContent)
                let after = try await client.call(.get, "/v1/whoami", token: issued.secret)
                #expect(after.status == .unauthorized)
                #expect(after.error?.error == "unauthenticated")

                // Removed from the tenant: every token of theirs stops working.
                #expect(try await client.call(.delete, "/v1/tenants/\(tenant)/roles/reggie", token: admin).status == .noContent)
                #expect(try await client.call(.get, "/v1/whoami", token: reader).status == .unauthorized)

                // The last Administrator cannot be removed or demoted.
                let last = try await client.call(.delete, "/v1/tenants/\(tenant)/roles/admin", token: admin)
                #expect(last.error?.error == "last_administrator")
                let demote = try await client.call(
                    .post, "/v1/tenants/\(tenant)/roles", token: admin, json: AssignRoleRequest(user: "admin", role: .reader))
                #expect(demote.error?.error == "last_administrator")

                // Expired: tokens default to 90 days.
                let short = try await client.call(
                    .post, "/v1/tenants/\(tenant)/tokens", token: admin, json: CreateTokenRequest(expiresInDays: 1)
                ).decode(IssuedToken.self)
                clock.advance(days: 2)
                #expect(try await client.call(.get, "/v1/whoami", token: short.secret).status == .unauthorized)
                #expect(try await client.call(.get, "/v1/whoami", token: admin).status == .ok)
                clock.advance(days: 89)
                #expect(try await client.call(.get, "/v1/whoami", token: admin).status == .unauthorized)
            }
        }
    }

    @Test(arguments: engines)
    func secretsAreStoredOnlyAsHashes(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            let created = try await harness.test { client in
                try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
            }
            #expect(created.token.secret.hasPrefix("rpt_"))
            #expect(created.token.secret.count >= 4 + 43)
            let rows = try await harness.database.read { db in try await db.query("SELECT * FROM tokens", []) }
            #expect(rows.count == 2)
            for row in rows {
                for value in row.values.values {
                    if case .text(let text) = value {
                        #expect(!text.contains(created.token.secret))
                        #expect(!text.contains(harness.operatorToken))
                    }
                }
            }
            let hashes = rows.compactMap { try? $0.text("secret_hash") }
            #expect(hashes.contains(APIToken.hash(created.token.secret)))
        }
    }

    @Test func tokenListShowsNoSecrets() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let listed = try await client.call(.get, "/v1/tenants/\(created.tenant.id)/tokens", token: created.token.secret)
                #expect(listed.status == .ok)
                #expect(!listed.text.contains(created.token.secret))
                #expect(try listed.decode(ListDocument<TokenDocument>.self).items.count == 1)
            }
        }
    }
}
