import Foundation
import RampartDevice
@testable import RampartCLI
import RampartModel
import RampartTestSupport
import Testing

/// schemathesis (PyPI), a fuzzer we did not write, generates requests from openapi.json
/// and checks every answer against it: no 500, no undocumented status, no schema-violating
/// request accepted, 405 for undeclared methods. Tests/Scripts/schemathesis.toml says where
/// the document cannot express what a valid request is (image uploads).
@Suite struct SchemathesisTests {
    @Test func apiConformsToItsOpenAPIDocument() async throws {
        let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/RampartService/openapi.json").path
        let configuration = URL(fileURLWithPath: document).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Scripts/schemathesis.toml").path
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await LocalService.run(dataDirectory: directory, logger: quietLogger) { local in
            let login = try await LoginCommand.login(
                server: local.url, token: local.bootstrapToken, fingerprint: local.rootCAFingerprint, caFile: nil)
            let tenant = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: login.rootPEM) {
                try await $0.createTenant(CreateTenantRequest(name: "Fuzzed"))
            }
            let run = try await Command.run(
                "/usr/bin/env",
                [
                    "st", "--config-file", configuration, "run", document, "--url", local.url, "-H", "Authorization: Bearer \(tenant.token.secret)",
                    "--tls-verify", "false", "--checks", "all", "--max-examples", "25", "--seed", "1",
                ])
            #expect(run.status == 0, "\(run.output.suffix(6000))")
        }
    }
}
