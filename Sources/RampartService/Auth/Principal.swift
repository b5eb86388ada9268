public import Hummingbird
public import NIOCore
public import RampartModel

/// Who is calling, as established by their API token.
public enum Principal: Sendable, Equatable {
    /// A service operator: creates tenants, manages the service; sees no tenant's data.
    case serviceOperator(token: TokenID)
    /// A user acting inside one tenant with one role.
    case user(TenantUser)
    /// A device presenting its attested client certificate over mutual TLS.
    case device(DeviceID, tenant: TenantID)

    var actorName: String {
        switch self {
        case .serviceOperator: "operator"
        case .user(let user): user.name
        case .device(let device, _): "device:\(device)"
        }
    }

    var tenantID: TenantID? {
        switch self {
        case .serviceOperator: nil
        case .user(let user): user.tenant
        case .device(_, let tenant): tenant
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
    /// The connection, to ask TLS for the peer's certificate (mutual TLS for devices).
    let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
        auditAction = nil
        channel = source.channel
    }
}
