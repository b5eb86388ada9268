import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
@testable import RampartCLI
import RampartModel
import RampartTestSupport
import Testing

/// The service over a real socket with TLS, and the CLI's trust in it.
@Suite struct LiveTLSTests {
    @Test func loginPinsTheRootCAByFingerprint() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await LocalService.run(dataDirectory: directory, logger: quietLogger) { local in
            let login = try await LoginCommand.login(
                server: local.url, token: local.bootstrapToken, fingerprint: local.rootCAFingerprint, caFile: nil)
            #expect(login.whoAmI.principal == "operator")
            #expect(login.rootPEM != nil)

            // A different fingerprint: the CLI refuses to trust the server.
            let wrong = String(repeating: "0", count: 64)
            await #expect(throws: CLIError.self) {
                _ = try await LoginCommand.login(server: local.url, token: local.bootstrapToken, fingerprint: wrong, caFile: nil)
            }
            // No pin and no CA file: the system trust store does not know our CA.
            await #expect(throws: CLIError.self) {
                _ = try await LoginCommand.login(server: local.url, token: local.bootstrapToken, fingerprint: nil, caFile: nil)
            }
            // A wrong token over a trusted connection: 401 from the service.
            await #expect(throws: APIFailure.self) {
                _ = try await LoginCommand.login(
                    server: local.url, token: "rpt_wrong", fingerprint: local.rootCAFingerprint, caFile: nil)
            }
        }
    }

    /// The service speaks TLS 1.3 only: a client that stops at TLS 1.2 gets no connection.
    @Test func tls12IsRefused() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await LocalService.run(dataDirectory: directory, logger: quietLogger) { local in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            tls.maximumTLSVersion = .tlsv12
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            var refused = false
            do {
                _ = try await client.execute(HTTPClientRequest(url: "\(local.url)/healthz"), timeout: .seconds(10))
            } catch {
                refused = true
            }
            try await client.shutdown()
            #expect(refused)

            var modern = TLSConfiguration.makeClientConfiguration()
            modern.certificateVerification = .none
            modern.minimumTLSVersion = .tlsv13
            let client13 = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: modern))
            let response = try await client13.execute(HTTPClientRequest(url: "\(local.url)/healthz"), timeout: .seconds(10))
            try await client13.shutdown()
            #expect(response.status.code == 200)
        }
    }
}
