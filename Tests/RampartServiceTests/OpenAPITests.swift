import Foundation
import HTTPTypes
@testable import RampartService
import Testing

@Suite struct OpenAPITests {
    /// Every route the server has is described in openapi.json, and nothing else is.
    @Test func everyRouteIsDocumented() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(try OpenAPIDocument.text().utf8)) as? [String: Any])
            #expect((document["openapi"] as? String)?.hasPrefix("3.") == true)
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let documented = Set(paths.flatMap { path, operations in
                operations.keys.filter { ["get", "post", "put", "patch", "delete"].contains($0) }.map { "\($0.uppercased()) \(path)" }
            })
            let served = Set(harness.api.endpoints.map { "\($0.method.rawValue) \($0.path)" })
            #expect(served.subtracting(documented).isEmpty, "undocumented: \(served.subtracting(documented).sorted())")
            #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")

            // And the service serves that same document.
            let answer = try await harness.test { client in try await client.call(.get, "/openapi.json", token: nil) }
            #expect(answer.status == .ok)
            #expect(answer.text == (try OpenAPIDocument.text()))
        }
    }

    @Test func metricsCountRefusals() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                _ = try await client.call(.get, "/v1/whoami", token: "rpt_nonsense")
                let health = try await client.call(.get, "/healthz", token: nil)
                #expect(health.status == .ok)
                let metrics = try await client.call(.get, "/metrics", token: nil)
                #expect(metrics.status == .ok)
                #expect(metrics.text.contains("rampart_refusals_total{code=\"unauthenticated\"}"))
                #expect(metrics.text.contains("hb_requests"))
            }
        }
    }
}
