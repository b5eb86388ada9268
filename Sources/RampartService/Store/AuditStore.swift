import Foundation
import RampartModel

// The audit log: append-only, one row per mutating call.
extension SQLExecutor {
    func appendAudit(
        tenant: TenantID?, actor: String, action: String, target: String, outcome: String, at time: Date
    ) async throws {
        try await query(
            "INSERT INTO audit_log (tenant_id, actor, action, target, outcome, time) VALUES ($1, $2, $3, $4, $5, $6)",
            tenant.map { .of($0) } ?? .null, .text(actor), .text(action), .text(target), .text(outcome), .of(time))
    }

    /// The newest entries first, at most `limit`.
    func auditEntries(tenant: TenantID, limit: Int) async throws -> [AuditEntryDocument] {
        try await query(
            "SELECT * FROM audit_log WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", .of(tenant), .int(Int64(limit))
        ).map { row in
            AuditEntryDocument(
                id: try row.int("id"), tenantId: try row.optionalText("tenant_id").flatMap(TenantID.init),
                actor: try row.text("actor"), action: try row.text("action"), target: try row.text("target"),
                outcome: try row.text("outcome"), time: try row.date("time"))
        }
    }
}
