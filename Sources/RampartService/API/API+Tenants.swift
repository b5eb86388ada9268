import Foundation
import Hummingbird
import RampartModel

extension API {
    var tenantEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants", action: "tenant.create") { request, context in
                try context.requireOperator()
                let body = try await request.decodeBody(CreateTenantRequest.self)
                let name = try validatedName(body.name)
                let adminName = try validatedName(body.administrator ?? "admin", field: "administrator")
                let now = now()
                let created = try await database.transaction { db in
                    if try await db.tenant(named: name) != nil {
                        throw ServiceError.conflict("tenant_name_taken", "a tenant named '\(name)' exists already")
                    }
                    let tenant = TenantDocument(id: .random(), name: name, createdAt: now)
                    try await db.insertTenant(tenant)
                    try await pki.createTenantCA(for: tenant, db: db, now: now)
                    let admin = UserDocument(id: .random(), tenantId: tenant.id, name: adminName, role: .administrator, createdAt: now)
                    try await db.insertUser(admin)
                    let token = try await issueToken(
                        db: db, tenant: tenant.id, user: admin, name: "initial administrator token",
                        days: APIToken.defaultLifetimeDays, now: now)
                    // Recorded in the new tenant's own log, so its Administrators see how it began.
                    try await db.appendAudit(
                        tenant: tenant.id, actor: context.principal?.actorName ?? "operator", action: "tenant.create",
                        target: "tenant/\(tenant.id) administrator=\(adminName)", outcome: "success", at: now)
                    return TenantCreated(tenant: tenant, administrator: admin, token: token)
                }
                return try .json(created, status: .created)
            },
            Endpoint(.get, "/v1/tenants") { _, context in
                let principal = try context.requirePrincipal()
                let tenants = try await database.read { db in
                    switch principal {
                    case .serviceOperator: return try await db.tenants()
                    case .user(let user): return [try await db.tenant(user.tenant)].compactMap { $0 }
                    case .device: return []
                    }
                }
                return try .json(ListDocument(items: tenants))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}") { _, context in
                let id = try context.id("tenantId", as: TenantID.self)
                if case .serviceOperator = try context.requirePrincipal() {} else { _ = try context.authorize(id, .reader) }
                guard let tenant = try await database.read({ db in try await db.tenant(id) }) else {
                    throw ServiceError.notFound("tenant", id.description)
                }
                return try .json(tenant)
            },
        ]
    }

    /// Creates a token row and returns its one-time secret.
    func issueToken(
        db: any SQLExecutor, tenant: TenantID?, user: UserDocument?, name: String, days: Int, now: Date
    ) async throws -> IssuedToken {
        let (secret, hash) = APIToken.generate()
        let document = TokenDocument(
            id: .random(), name: name, tenantId: tenant, user: user?.name, createdAt: now,
            expiresAt: now.addingTimeInterval(TimeInterval(days) * 86_400), revokedAt: nil)
        try await db.insertToken(document, userID: user?.id, secretHash: hash)
        return IssuedToken(token: document, secret: secret)
    }
}
