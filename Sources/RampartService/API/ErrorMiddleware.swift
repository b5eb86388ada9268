import Foundation
import Hummingbird
import Logging
import Metrics
import RampartImage
import RampartModel

/// Turns every error into the API's JSON error shape and counts refusals.
///
/// Client mistakes arrive here as ``ServiceError`` (4xx). Anything else is the service's
/// own failure: logged with the request ID and answered 500 without details.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = RampartRequestContext
    /// The served routes, to tell "no such path" (404) from "not this method" (405).
    let routes: RouteTable

    func handle(
        _ request: Request, context: RampartRequestContext,
        next: (Request, RampartRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServiceError {
            Refusals.count(error)
            return try error.response(from: request, context: context)
        } catch let error as ImagePackageError {
            let mapped = ServiceError(error.statusCode, error.code, error.message)
            Refusals.count(mapped)
            return try mapped.response(from: request, context: context)
        } catch let error as HTTPError {
            let mapped: ServiceError =
                switch error.status {
                case .notFound:
                    if case let allowed = routes.methods(matching: request.uri.path), !allowed.isEmpty {
                        ServiceError(
                            405, "method_not_allowed",
                            "\(request.method) is not allowed on \(request.uri.path); allowed: \(allowed.joined(separator: ", "))")
                    } else {
                        ServiceError(404, "route_not_found", "no route \(request.method) \(request.uri.path)")
                    }
                case .contentTooLarge: .bodyTooLarge
                case .methodNotAllowed:
                    ServiceError(405, "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
                default:
                    ServiceError(error.status.code, "http_\(error.status.code)", error.body ?? error.status.reasonPhrase)
                }
            Refusals.count(mapped)
            var response = try mapped.response(from: request, context: context)
            if mapped.statusCode == 405 {
                response.headers[.allow] = routes.methods(matching: request.uri.path).joined(separator: ", ")
            }
            return response
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            Counter(label: "rampart_internal_errors_total").increment()
            return try ServiceError.internalError.response(from: request, context: context)
        }
    }
}

/// The metrics counter behind every refusal, labelled by its error code.
enum Refusals {
    static func count(_ error: ServiceError) {
        Counter(label: "rampart_refusals_total", dimensions: [("code", error.code)]).increment()
    }
}

/// The API's paths as templates (`/v1/tenants/{tenantId}`), to find which methods a
/// concrete path allows.
struct RouteTable: Sendable {
    private let entries: [(method: String, segments: [Substring])]

    init(_ endpoints: [Endpoint]) {
        entries = endpoints.map { ($0.method.rawValue, $0.path.split(separator: "/")) }
    }

    func methods(matching path: String) -> [String] {
        let segments = path.split(separator: "/")
        return entries.filter { entry in
            entry.segments.count == segments.count
                && zip(entry.segments, segments).allSatisfy { template, actual in
                    template.hasPrefix("{") || template == actual
                }
        }.map(\.method).sorted()
    }
}
