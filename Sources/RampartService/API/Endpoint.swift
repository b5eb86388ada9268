import Foundation
public import HTTPTypes
import Hummingbird
import Logging
import RampartModel

/// One route of the API: method, path (OpenAPI style, `{tenantId}`), the audit action
/// when it changes anything, and the handler.
///
/// All routes are declared in ``API/endpoints`` and registered from that one list, which
/// is also what the OpenAPI test compares with `openapi.json`.
public struct Endpoint: Sendable {
    public let method: HTTPRequest.Method
    public let path: String
    /// `tenant.create`, `device.claim`, …; `nil` for reads.
    public let action: String?
    let handler: @Sendable (Request, RampartRequestContext) async throws -> Response

    init(
        _ method: HTTPRequest.Method, _ path: String, action: String? = nil,
        _ handler: @escaping @Sendable (Request, RampartRequestContext) async throws -> Response
    ) {
        self.method = method
        self.path = path
        self.action = action
        self.handler = handler
    }
}

extension Request {
    /// An optional query parameter parsed as an identifier; a malformed one is a 400 that names it.
    func queryID<ID: EntityID>(_ name: String, as type: ID.Type) throws -> ID? {
        try uri.queryParameters.get(name).map { try parseID(String($0), field: name) }
    }
}

private func parseID<ID: EntityID>(_ text: String, field: String) throws -> ID {
    guard let id = ID(text) else { throw ServiceError.invalidField(field, "'\(text)' is not a UUID") }
    return id
}

extension Response {
    /// A JSON response in the service's encoding.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let data = try JSONEncoder.rampart.encode(value)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static var noContent: Response { Response(status: .noContent) }
}

extension RampartRequestContext {
    /// A path parameter parsed as an identifier; a malformed one is a 400 that names it.
    func id<ID: EntityID>(_ name: String, as type: ID.Type) throws -> ID {
        try parseID(parameters.get(name) ?? "", field: name)
    }

    func deviceID(_ name: String = "deviceId") throws -> DeviceID {
        let text = parameters.get(name) ?? ""
        guard let id = DeviceID(text) else {
            throw ServiceError(400, "invalid_device_id", "'\(text)' is not a device ID (64 hexadecimal characters)")
        }
        return id
    }

    /// The tenant user, if the caller is one of `tenant` with at least `minimum`.
    ///
    /// Anyone outside the tenant gets 404, exactly as if the tenant did not exist, so
    /// existence does not leak; a member whose role is too low gets 403.
    func authorize(_ tenant: TenantID, _ minimum: Role) throws -> TenantUser {
        guard let principal else { throw ServiceError.unauthenticated }
        guard case .user(let user) = principal, user.tenant == tenant else {
            throw ServiceError.notFound("tenant", tenant.description)
        }
        guard user.role.includes(minimum) else { throw ServiceError.forbidden(minimum, has: user.role.rawValue) }
        return user
    }

    /// Like ``authorize(_:_:)`` but for routes open to an explicit set of roles.
    func authorize(_ tenant: TenantID, oneOf roles: Set<Role>) throws -> TenantUser {
        let user = try authorize(tenant, .reader)
        guard roles.contains(user.role) else {
            let names = roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw ServiceError(403, "forbidden", "this needs the \(names) role; your token has \(user.role.rawValue)")
        }
        return user
    }

    func requireOperator() throws {
        guard let principal else { throw ServiceError.unauthenticated }
        guard case .serviceOperator = principal else { throw ServiceError.operatorOnly }
    }

    /// The device behind the mutual-TLS client certificate.
    func requireDevice() throws -> (DeviceID, TenantID) {
        guard case .device(let device, let tenant) = principal else {
            throw ServiceError(401, "device_certificate_required", "present the device's attested client certificate (mutual TLS)")
        }
        return (device, tenant)
    }

    func requirePrincipal() throws -> Principal {
        guard let principal else { throw ServiceError.unauthenticated }
        return principal
    }
}

extension SQLExecutor {
    /// Records the current mutating call as successful, inside its transaction, so the
    /// change and its audit entry commit (or vanish) together.
    func audit(_ context: RampartRequestContext, target: String, at time: Date) async throws {
        guard let principal = context.principal, let action = context.auditAction else { return }
        try await appendAudit(
            tenant: principal.tenantID, actor: principal.actorName, action: action, target: target, outcome: "success",
            at: time)
    }
}
