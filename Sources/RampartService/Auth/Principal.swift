public import Hummingbird
public import RampartModel

/// Who is calling, as established by their API token.
public enum Principal: Sendable, Equatable {
    /// A service operator: creates tenants, manages the service; sees no tenant's data.
    case serviceOperator(token: TokenID)
    /// A user acting inside one tenant with one role.
    case user(TenantUser)

    var actorName: String {
        switch self {
        case .serviceOperator: "operator"
        case .user(let user): user.name
        }
    }

    var tenantID: TenantID? {
        if case .user(let user) = self { return user.tenant }
        return nil
    }

    var tokenID: TokenID {
        switch self {
        case .serviceOperator(let token): token
        case .user(let user): user.token
        }
    }
}

/// A tenant user behind a token.
public struct TenantUser: Sendable, Equatable {
    public let id: UserID
    public let name: String
    public let tenant: TenantID
    public let role: Role
    public let token: TokenID
}

/// The request context of the Security Service: Hummingbird's core context plus the
/// authenticated principal and, for mutating routes, the audit action.
public struct RampartRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    var auditAction: String?

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
        auditAction = nil
    }
}
