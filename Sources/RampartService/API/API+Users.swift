import Foundation
import Hummingbird
import RampartModel

extension API {
    var userEndpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/whoami") { _, context in
                let principal = try context.requirePrincipal()
                let answer =
                    switch principal {
                    case .serviceOperator(let token):
                        WhoAmI(principal: "operator", tenantId: nil, role: "Operator", tokenId: token)
                    case .user(let user):
                        WhoAmI(principal: user.name, tenantId: user.tenant, role: user.role.rawValue, tokenId: user.token)
                    case .device:
                        throw ServiceError(403, "device_not_allowed", "devices use /v1/device routes, not the operator API")
                    }
                return try .json(answer)
            },

            // Roles: who belongs to the tenant and with what rights.
            Endpoint(.get, "/v1/tenants/{tenantId}/roles") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                return try .json(ListDocument(items: try await database.read { db in try await db.users(in: tenant) }))
            },
            Endpoint(.post, "/v1/tenants/{tenantId}/roles", action: "role.add") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .administrator)
                let body = try await request.decodeBody(AssignRoleRequest.self)
                let name = try validatedName(body.user, field: "user")
                let now = now()
                let user = try await database.transaction { db in
                    var user: UserDocument
                    if let existing = try await db.user(named: name, in: tenant) {
                        if existing.role == .administrator, body.role != .administrator {
                            try await requireAnotherAdministrator(db: db, tenant: tenant, besides: existing.id)
                        }
                        try await db.setRole(body.role, of: existing.id)
                        user = existing
                        user.role = body.role
                    } else {
                        user = UserDocument(id: .random(), tenantId: tenant, name: name, role: body.role, createdAt: now)
                        try await db.insertUser(user)
                    }
                    try await db.audit(context, target: "user/\(name) role=\(body.role.rawValue)", at: now)
                    return user
                }
                return try .json(user)
            },
            Endpoint(.delete, "/v1/tenants/{tenantId}/roles/{user}", action: "role.remove") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .administrator)
                let name = context.parameters.get("user") ?? ""
                let now = now()
                try await database.transaction { db in
                    guard let user = try await db.user(named: name, in: tenant) else {
                        throw ServiceError.notFound("user", name)
                    }
                    if user.role == .administrator {
                        try await requireAnotherAdministrator(db: db, tenant: tenant, besides: user.id)
                    }
                    try await db.deleteUser(user.id)
                    try await db.audit(context, target: "user/\(name)", at: now)
                }
                return .noContent
            },

            // Tokens of a tenant's users. Everyone may manage their own; Administrators anyone's.
            Endpoint(.get, "/v1/tenants/{tenantId}/tokens") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                let caller = try context.authorize(tenant, .reader)
                let tokens = try await database.read { db in
                    try await db.tokens(in: tenant, user: caller.role == .administrator ? nil : caller.id)
                }
                return try .json(ListDocument(items: tokens))
            },
            Endpoint(.post, "/v1/tenants/{tenantId}/tokens", action: "token.create") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                let caller = try context.authorize(tenant, .reader)
                let body = try await request.decodeBody(CreateTokenRequest.self)
                let days = try validatedLifetime(body.expiresInDays)
                let tokenName = try validatedName(body.name ?? "api token")
                let now = now()
                let issued = try await database.transaction { db in
                    let userName = body.user ?? caller.name
                    if userName != caller.name, caller.role != .administrator {
                        throw ServiceError.forbidden(.administrator, has: caller.role.rawValue)
                    }
                    guard let user = try await db.user(named: userName, in: tenant) else {
                        throw ServiceError.notFound("user", userName)
                    }
                    let issued = try await issueToken(db: db, tenant: tenant, user: user, name: tokenName, days: days, now: now)
                    try await db.audit(context, target: "token/\(issued.token.id) user=\(userName)", at: now)
                    return issued
                }
                return try .json(issued, status: .created)
            },
            Endpoint(.delete, "/v1/tenants/{tenantId}/tokens/{tokenId}", action: "token.revoke") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                let caller = try context.authorize(tenant, .reader)
                let id = try context.id("tokenId", as: TokenID.self)
                let now = now()
                try await database.transaction { db in
                    guard let (_, owner) = try await db.token(id, in: tenant),
                        caller.role == .administrator || owner == caller.id
                    else { throw ServiceError.notFound("token", id.description) }
                    try await db.revokeToken(id, at: now)
                    try await db.audit(context, target: "token/\(id)", at: now)
                }
                return .noContent
            },

            // Service operator tokens.
            Endpoint(.get, "/v1/operator/tokens") { _, context in
                try context.requireOperator()
                let rows = try await database.read { db in
                    try await db.query("SELECT t.*, NULL AS user_name FROM tokens t WHERE t.tenant_id IS NULL ORDER BY created_at")
                }
                return try .json(ListDocument(items: try rows.map(TokenDocument.init(row:))))
            },
            Endpoint(.post, "/v1/operator/tokens", action: "operator-token.create") { request, context in
                try context.requireOperator()
                let body = try await request.decodeBody(CreateTokenRequest.self)
                guard body.user == nil else { throw ServiceError.invalidField("user", "operator tokens belong to no user") }
                let days = try validatedLifetime(body.expiresInDays)
                let tokenName = try validatedName(body.name ?? "operator token")
                let now = now()
                let issued = try await database.transaction { db in
                    let issued = try await issueToken(db: db, tenant: nil, user: nil, name: tokenName, days: days, now: now)
                    try await db.audit(context, target: "token/\(issued.token.id)", at: now)
                    return issued
                }
                return try .json(issued, status: .created)
            },
            Endpoint(.delete, "/v1/operator/tokens/{tokenId}", action: "operator-token.revoke") { _, context in
                try context.requireOperator()
                let id = try context.id("tokenId", as: TokenID.self)
                let now = now()
                try await database.transaction { db in
                    let rows = try await db.query("SELECT id FROM tokens WHERE id = $1 AND tenant_id IS NULL", .of(id))
                    guard !rows.isEmpty else { throw ServiceError.notFound("token", id.description) }
                    try await db.revokeToken(id, at: now)
                    try await db.audit(context, target: "token/\(id)", at: now)
                }
                return .noContent
            },
        ]
    }

    private func requireAnotherAdministrator(db: any SQLExecutor, tenant: TenantID, besides user: UserID) async throws {
        let others = try await db.users(in: tenant).filter { $0.role == .administrator && $0.id != user }
        guard !others.isEmpty else {
            throw ServiceError.conflict(
                "last_administrator", "a tenant must keep at least one Administrator; add another one first")
        }
    }

    private func validatedLifetime(_ days: Int?) throws -> Int {
        let days = days ?? APIToken.defaultLifetimeDays
        guard (1...APIToken.maximumLifetimeDays).contains(days) else {
            throw ServiceError.invalidField("expiresInDays", "must be between 1 and \(APIToken.maximumLifetimeDays)")
        }
        return days
    }
}
