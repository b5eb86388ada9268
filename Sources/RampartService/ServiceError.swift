public import Foundation
public import HTTPTypes
public import Hummingbird
public import RampartModel

/// A refusal or failure the Security Service answers with `{"error": code, "message": …}`.
///
/// Codes are stable: scripts match on them. Equality is on the code.
public struct ServiceError: RampartError, HTTPResponseError, Equatable {
    public let code: String
    public let message: String
    public let statusCode: Int

    public init(_ status: Int, _ code: String, _ message: String) {
        self.statusCode = status
        self.code = code
        self.message = message
    }

    public static func == (lhs: ServiceError, rhs: ServiceError) -> Bool { lhs.code == rhs.code }

    // MARK: HTTPResponseError

    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder.rampart.encode(body)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if statusCode == 401 { headers[.wwwAuthenticate] = "Bearer realm=\"rampart\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: The refusals

    static let unauthenticated = ServiceError(
        401, "unauthenticated", "missing, unknown, expired or revoked API token; log in again with a valid token")
    static func forbidden(_ needed: Role, has: String) -> ServiceError {
        ServiceError(403, "forbidden", "this needs the \(needed.rawValue) role; your token has \(has)")
    }
    static let operatorOnly = ServiceError(
        403, "operator_only", "only a service operator token may do this")
    static func notFound(_ what: String, _ id: String) -> ServiceError {
        ServiceError(404, "\(what.replacingOccurrences(of: " ", with: "_"))_not_found", "no \(what) '\(id)' is visible to this token")
    }
    static func badRequest(_ message: String) -> ServiceError {
        ServiceError(400, "bad_request", message)
    }
    static func invalidField(_ field: String, _ why: String) -> ServiceError {
        ServiceError(400, "invalid_field", "\(field): \(why)")
    }
    static func conflict(_ code: String, _ message: String) -> ServiceError {
        ServiceError(409, code, message)
    }
    static let bodyTooLarge = ServiceError(
        413, "body_too_large", "request body exceeds the limit of \(APILimits.maxBodyBytes) bytes")
    static let internalError = ServiceError(
        500, "internal_error", "the service failed; nothing was changed. The server log has the details")
}

/// Limits on what the API accepts.
public enum APILimits {
    /// Largest JSON request body: 64 KiB. No request in the core API comes near it.
    public static let maxBodyBytes = 64 * 1024
    /// Longest name (tenant, product, device group, user, token).
    public static let maxNameLength = 50
    /// Longest description.
    public static let maxDescriptionLength = 1024
}
