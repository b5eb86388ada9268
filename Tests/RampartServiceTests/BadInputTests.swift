import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import RampartModel
import RampartTestSupport
@testable import RampartService
import Testing

/// Bad input gets a 4xx with `{"error", "message"}`, never a 500, and changes nothing.
@Suite struct BadInputTests {
    struct Probe: Sendable, CustomStringConvertible {
        let description: String
        let method: HTTPRequest.Method
        let path: String
        let body: String?
        let token: Token
        let status: HTTPResponse.Status
        let code: String
    }

    enum Token: Sendable { case admin, none, bogus }

    static func probes(tenant: TenantID, product: ProductID) -> [Probe] {
        let products = "/v1/tenants/\(tenant)/products"
        let devices = "/v1/tenants/\(tenant)/devices"
        return [
            Probe(description: "truncated JSON", method: .post, path: products, body: "{\"name\":", token: .admin, status: .badRequest, code: "malformed_json"),
            Probe(description: "JSON array", method: .post, path: products, body: "[]", token: .admin, status: .badRequest, code: "malformed_json"),
            Probe(description: "not JSON", method: .post, path: products, body: "name=x", token: .admin, status: .badRequest, code: "malformed_json"),
            Probe(description: "unknown field", method: .post, path: products, body: "{\"name\":\"x\",\"colour\":\"red\"}", token: .admin, status: .badRequest, code: "unknown_field"),
            Probe(description: "wrong type", method: .post, path: products, body: "{\"name\":5}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "missing field", method: .post, path: products, body: "{}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "null field", method: .post, path: products, body: "{\"name\":null}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "empty name", method: .post, path: products, body: "{\"name\":\"  \"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "name of 51 characters", method: .post, path: products, body: "{\"name\":\"\(String(repeating: "n", count: 51))\"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "control character in name", method: .post, path: products, body: "{\"name\":\"a\\u0007b\"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "body over 64 KiB", method: .post, path: products, body: "{\"name\":\"\(String(repeating: "x", count: 70_000))\"}", token: .admin, status: .contentTooLarge, code: "body_too_large"),
            Probe(description: "device ID too short", method: .post, path: devices, body: "{\"deviceId\":\"abc\"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "device ID not hex", method: .post, path: devices, body: "{\"deviceId\":\"\(String(repeating: "z", count: 64))\"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "device ID in path not hex", method: .get, path: "\(devices)/xyz", body: nil, token: .admin, status: .badRequest, code: "invalid_device_id"),
            Probe(description: "tenant ID not a UUID", method: .get, path: "/v1/tenants/not-a-uuid/devices", body: nil, token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "product ID not a UUID", method: .get, path: "\(products)/42", body: nil, token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "unknown product", method: .get, path: "\(products)/\(UUID())", body: nil, token: .admin, status: .notFound, code: "product_not_found"),
            Probe(description: "unknown OS feed", method: .post, path: "/v1/tenants/\(tenant)/device-groups", body: "{\"productId\":\"\(product)\",\"name\":\"G\",\"osFeed\":\"beta\"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "unknown role", method: .post, path: "/v1/tenants/\(tenant)/roles", body: "{\"user\":\"u\",\"role\":\"Owner\"}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "token lifetime 0 days", method: .post, path: "/v1/tenants/\(tenant)/tokens", body: "{\"expiresInDays\":0}", token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "audit limit not a number", method: .get, path: "/v1/tenants/\(tenant)/audit?limit=many", body: nil, token: .admin, status: .badRequest, code: "invalid_field"),
            Probe(description: "text/plain body", method: .post, path: products, body: nil, token: .admin, status: .unsupportedMediaType, code: "unsupported_media_type"),
            Probe(description: "no token", method: .get, path: products, body: nil, token: .none, status: .unauthorized, code: "unauthenticated"),
            Probe(description: "unknown token", method: .get, path: products, body: nil, token: .bogus, status: .unauthorized, code: "unauthenticated"),
            Probe(description: "unknown route", method: .get, path: "/v1/nothing-here", body: nil, token: .admin, status: .notFound, code: "route_not_found"),
            Probe(description: "wrong method on a known route", method: .put, path: products, body: nil, token: .admin, status: .methodNotAllowed, code: "method_not_allowed"),
        ]
    }

    @Test(arguments: engines)
    func badInputIsRefusedWithAClearError(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let product = try await client.createProduct("Thermostat", tenant: tenant, token: created.token.secret)
                for probe in Self.probes(tenant: tenant, product: product.id) {
                    let token: String? =
                        switch probe.token {
                        case .admin: created.token.secret
                        case .none: nil
                        case .bogus: "rpt_" + String(repeating: "A", count: 43)
                        }
                    let answer: Answer
                    if probe.description == "text/plain body" {
                        var headers = HTTPFields()
                        headers[.authorization] = "Bearer \(token!)"
                        headers[.contentType] = "text/plain"
                        let response = try await client.client.executeRequest(
                            uri: probe.path, method: probe.method, headers: headers, body: .init(string: "{\"name\":\"x\"}"))
                        answer = Answer(status: response.status, body: Data(response.body.readableBytesView))
                    } else {
                        answer = try await client.call(probe.method, probe.path, token: token, raw: probe.body)
                    }
                    #expect(answer.status == probe.status, "\(probe): \(answer.status) \(answer.text)")
                    #expect(answer.error?.error == probe.code, "\(probe): \(answer.text)")
                    #expect(answer.error.map { $0.message.count > 10 } == true, "\(probe) has no message")
                }
                let products = try await client.call(.get, "/v1/tenants/\(tenant)/products", token: created.token.secret)
                    .decode(ListDocument<ProductDocument>.self).items
                #expect(products.map(\.name) == ["Thermostat"], "a refused request created something")
            }
        }
    }

    /// Random and mangled bodies against every route that takes one: never a 500.
    @Test func garbageNeverCausesA500() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let product = try await client.createProduct("Thermostat", tenant: tenant, token: created.token.secret)
                let group = try await client.groups(of: product.id, tenant: tenant, token: created.token.secret)[0]
                let device = try await harness.device().id
                let substitutions = [
                    "{tenantId}": tenant.description, "{productId}": product.id.description,
                    "{deviceGroupId}": group.id.description, "{deviceId}": device.hex, "{user}": "nobody",
                    "{tokenId}": UUID().uuidString, "{version}": "1.0.0",
                ]
                let bodies = [
                    "", "null", "0", "\"text\"", "{\"name\":{}}", "{\"name\":[1,2]}", "{\"deviceId\":12}",
                    "{\"productId\":\"x\",\"name\":\"y\"}", "{\"role\":true,\"user\":false}", "{\"expiresInDays\":1e309}",
                    String(decoding: (0..<200).map { _ in UInt8.random(in: 0...255) }, as: UTF8.self),
                    "{\"name\":\"\u{0}\"}", "{\"deviceGroupId\":\"\(UUID())\"}", "{\"name\":\"ok\",\"name\":\"twice\"}",
                ]
                for endpoint in harness.api.endpoints where endpoint.method == .post || endpoint.method == .patch {
                    var path = endpoint.path
                    for (key, value) in substitutions { path = path.replacingOccurrences(of: key, with: value) }
                    for body in bodies {
                        let answer = try await client.call(endpoint.method, path, token: created.token.secret, raw: body)
                        #expect(answer.status.code < 500, "\(endpoint.method) \(endpoint.path) with \(body.prefix(40)): \(answer.text)")
                    }
                }
            }
        }
    }
}
