import Foundation
import RampartDevice
@testable import RampartCLI
import RampartModel
import RampartTestSupport
import Testing

/// The `rampart-server` executable as an operator runs it: first start, restart, SIGTERM.
@Suite struct ServerBinaryTests {
    static let binary = CLIBinaryTests.binary.replacingOccurrences(of: "/rampart", with: "/rampart-server")

    @Test func firstStartRestartAndGracefulStop() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freeLoopbackPort()
        let arguments = ["--data-dir", "\(directory)/data", "--port", "\(port)", "--bootstrap-token-file", "\(directory)/bootstrap"]

        // First start: a bootstrap token (mode 0600) and the root fingerprint are printed.
        var server = try Spawned(Self.binary, arguments, log: "\(directory)/first.log")
        let first = try await server.waitForOutput(containing: "root CA SHA-256")
        let fingerprint = try #require(first.firstMatch(of: /root CA SHA-256: +([0-9a-f]{64})/)?.1)
        let token = try String(contentsOfFile: "\(directory)/bootstrap", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(first.contains(token))
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/bootstrap")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let login = try await LoginCommand.login(
            server: "https://127.0.0.1:\(port)", token: token, fingerprint: String(fingerprint), caFile: nil)
        #expect(login.whoAmI.principal == "operator")
        #expect(try await server.terminate() == 0)

        // Second start: same CA, no new bootstrap token, the old one still works.
        server = try Spawned(Self.binary, arguments, log: "\(directory)/second.log")
        let second = try await server.waitForOutput(containing: "root CA SHA-256")
        #expect(second.contains(String(fingerprint)))
        #expect(!second.contains("Bootstrap operator token"))
        let again = try await LoginCommand.login(
            server: "https://127.0.0.1:\(port)", token: token, fingerprint: String(fingerprint), caFile: nil)
        #expect(again.whoAmI.principal == "operator")
        #expect(try await server.terminate() == 0)
    }

    @Test func badConfigurationIsOneClearLine() async throws {
        let run = try await Command.run(Self.binary, ["--database", "mysql://nope", "--port", "0"])
        #expect(run.status != 0)
        #expect(run.output.contains("not a PostgreSQL URL"))
        let missingKey = try await Command.run(Self.binary, ["--database", "postgres://rampart@127.0.0.1:1/x", "--port", "0"])
        #expect(missingKey.status != 0)
        #expect(missingKey.output.contains("key-encryption key"))
        #expect(!missingKey.output.contains("Usage:"))
    }
}

/// A child process whose output goes to a log file, stopped with SIGTERM.
struct Spawned {
    let pid: pid_t
    let log: String

    init(_ executable: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        self.log = log
        pid = try Command.spawn(executable, arguments, output: log, environment: environment)
    }

    func waitForOutput(containing text: String, seconds: Int = 60) async throws -> String {
        for _ in 0..<(seconds * 10) {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if output.contains(text) { return output }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { throw HarnessError("the server exited early: \(output)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGKILL)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw HarnessError("no '\(text)' in \(log) after \(seconds) s; it ends:\n\(output.suffix(2000))")
    }

    /// Sends SIGTERM and returns the exit status.
    func terminate() async throws -> Int32 {
        kill(pid, SIGTERM)
        return try await Command.wait(for: pid)
    }
}
