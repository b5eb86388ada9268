import Foundation
import RampartModel

// Tenants, users and tokens: the rows that say who may do what.
extension SQLExecutor {
    func insertTenant(_ tenant: TenantDocument) async throws {
        try await query(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
            .of(tenant.id), .text(tenant.name), .of(tenant.createdAt))
    }

    func tenant(_ id: TenantID) async throws -> TenantDocument? {
        try await query("SELECT * FROM tenants WHERE id = $1", .of(id)).first.map(TenantDocument.init(row:))
    }

    func tenant(named name: String) async throws -> TenantDocument? {
        try await query("SELECT * FROM tenants WHERE name = $1", .text(name)).first.map(TenantDocument.init(row:))
    }

    func tenants() async throws -> [TenantDocument] {
        try await query("SELECT * FROM tenants ORDER BY name").map(TenantDocument.init(row:))
    }

    func insertUser(_ user: UserDocument) async throws {
        try await query(
            "INSERT INTO users (id, tenant_id, name, role, created_at) VALUES ($1, $2, $3, $4, $5)",
            .of(user.id), .of(user.tenantId), .text(user.name), .text(user.role.rawValue), .of(user.createdAt))
    }

    func setRole(_ role: Role, of user: UserID) async throws {
        try await query("UPDATE users SET role = $1 WHERE id = $2", .text(role.rawValue), .of(user))
    }

    func user(named name: String, in tenant: TenantID) async throws -> UserDocument? {
        try await query("SELECT * FROM users WHERE tenant_id = $1 AND name = $2", .of(tenant), .text(name))
            .first.map(UserDocument.init(row:))
    }

    func users(in tenant: TenantID) async throws -> [UserDocument] {
        try await query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY name", .of(tenant)).map(UserDocument.init(row:))
    }

    /// Removes a user and every token it held; the audit log keeps what it did.
    func deleteUser(_ id: UserID) async throws {
        try await query("DELETE FROM tokens WHERE user_id = $1", .of(id))
        try await query("DELETE FROM users WHERE id = $1", .of(id))
    }

    func insertToken(_ token: TokenDocument, userID: UserID?, secretHash: String) async throws {
        try await query(
            """
            INSERT INTO tokens (id, secret_hash, name, tenant_id, user_id, created_at, expires_at, revoked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
            """,
            .of(token.id), .text(secretHash), .text(token.name), token.tenantId.map { .of($0) } ?? .null,
            userID.map { .of($0) } ?? .null, .of(token.createdAt), .of(token.expiresAt))
    }

    /// The token with this secret hash, with its user's name and current role.
    func credential(secretHash: String) async throws -> StoredCredential? {
        let rows = try await query(
            """
            SELECT t.id, t.tenant_id, t.user_id, t.expires_at, t.revoked_at, u.name AS user_name, u.role
            FROM tokens t LEFT JOIN users u ON u.id = t.user_id
            WHERE t.secret_hash = $1
            """, .text(secretHash))
        guard let row = rows.first else { return nil }
        return StoredCredential(
            tokenID: TokenID(try row.text("id"))!,
            tenantID: try row.optionalText("tenant_id").flatMap(TenantID.init),
            userID: try row.optionalText("user_id").flatMap(UserID.init),
            userName: try row.optionalText("user_name"),
            role: try row.optionalText("role"),
            expiresAt: try row.date("expires_at"),
            revokedAt: try row.optionalDate("revoked_at"))
    }

    func tokens(in tenant: TenantID, user: UserID?) async throws -> [TokenDocument] {
        let base = """
            SELECT t.*, u.name AS user_name FROM tokens t LEFT JOIN users u ON u.id = t.user_id
            WHERE t.tenant_id = $1
            """
        let rows =
            if let user {
                try await query(base + " AND t.user_id = $2 ORDER BY t.created_at", .of(tenant), .of(user))
            } else {
                try await query(base + " ORDER BY t.created_at", .of(tenant))
            }
        return try rows.map(TokenDocument.init(row:))
    }

    func token(_ id: TokenID, in tenant: TenantID) async throws -> (TokenDocument, UserID?)? {
        let rows = try await query(
            """
            SELECT t.*, u.name AS user_name FROM tokens t LEFT JOIN users u ON u.id = t.user_id
            WHERE t.id = $1 AND t.tenant_id = $2
            """, .of(id), .of(tenant))
        guard let row = rows.first else { return nil }
        return (try TokenDocument(row: row), try row.optionalText("user_id").flatMap(UserID.init))
    }

    func revokeToken(_ id: TokenID, at time: Date) async throws {
        try await query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", .of(time), .of(id))
    }
}

/// A token as the authenticator needs it.
struct StoredCredential: Sendable {
    let tokenID: TokenID
    let tenantID: TenantID?
    let userID: UserID?
    let userName: String?
    let role: String?
    let expiresAt: Date
    let revokedAt: Date?
}

extension TenantDocument {
    init(row: SQLRow) throws {
        self.init(id: TenantID(try row.text("id"))!, name: try row.text("name"), createdAt: try row.date("created_at"))
    }
}

extension UserDocument {
    init(row: SQLRow) throws {
        self.init(
            id: UserID(try row.text("id"))!, tenantId: TenantID(try row.text("tenant_id"))!, name: try row.text("name"),
            role: Role(rawValue: try row.text("role")) ?? .reader, createdAt: try row.date("created_at"))
    }
}

extension TokenDocument {
    init(row: SQLRow) throws {
        self.init(
            id: TokenID(try row.text("id"))!, name: try row.text("name"),
            tenantId: try row.optionalText("tenant_id").flatMap(TenantID.init),
            user: try row.optionalText("user_name"), createdAt: try row.date("created_at"),
            expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at"))
    }
}
