import Foundation
import HTTPTypes
import Logging
public import Hummingbird
import RampartModel

/// Maps `Authorization: Bearer rpt_…` to a ``Principal``.
///
/// A request without the header continues unauthenticated (public routes such as
/// `/healthz` need none); a header with an unknown, expired or revoked token is refused
/// here with 401, whatever the route.
struct TokenAuthenticator: RouterMiddleware {
    typealias Context = RampartRequestContext
    let database: any Database
    let now: @Sendable () -> Date

    func handle(
        _ request: Request, context: RampartRequestContext,
        next: (Request, RampartRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        guard header.lowercased().hasPrefix("bearer ") else { throw ServiceError.unauthenticated }
        let secret = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard secret.hasPrefix(APIToken.prefix), secret.count < 100 else { throw ServiceError.unauthenticated }
        let hash = APIToken.hash(secret)
        guard let credential = try await database.read({ db in try await db.credential(secretHash: hash) }),
            credential.revokedAt == nil, credential.expiresAt > now()
        else {
            Refusals.count(ServiceError.unauthenticated)
            throw ServiceError.unauthenticated
        }
        var context = context
        if let tenant = credential.tenantID {
            guard let userID = credential.userID, let name = credential.userName,
                let role = credential.role.flatMap(Role.init(rawValue:))
            else { throw ServiceError.unauthenticated }
            context.principal = .user(TenantUser(id: userID, name: name, tenant: tenant, role: role, token: credential.tokenID))
        } else {
            context.principal = .serviceOperator(token: credential.tokenID)
        }
        context.logger[metadataKey: "principal"] = .string(context.principal!.actorName)
        if let tenant = credential.tenantID { context.logger[metadataKey: "tenant.id"] = .stringConvertible(tenant) }
        return try await next(request, context)
    }
}
