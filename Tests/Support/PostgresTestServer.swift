import Foundation

/// A throwaway PostgreSQL cluster: initdb in a temporary directory, started on a free
/// loopback port, stopped and deleted afterwards. Runs the server as the `postgres`
/// user when the tests run as root (PostgreSQL refuses to run as root).
public struct PostgresTestServer {
    public let url: String
    private let directory: String
    private let binDirectory: String

    public static func with<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let result = try await body(server.url)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    public static func start() async throws -> PostgresTestServer {
        guard let bin = findBinDirectory() else {
            throw HarnessError(
                "PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/install-deps.sh")
        }
        let directory = try temporaryDirectory(prefix: "rampart-pg")
        if geteuid() == 0 { try await run("/bin/chown", ["postgres:postgres", directory]) }
        try await runAsPostgres("\(bin)/initdb", ["-D", "\(directory)/data", "-U", "rampart", "--auth=trust", "-E", "UTF8", "--no-sync"])
        let port = try freePort()
        try await runAsPostgres(
            "\(bin)/pg_ctl",
            [
                "-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "30", "-o",
                "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start",
            ])
        return PostgresTestServer(url: "postgres://rampart@127.0.0.1:\(port)/postgres", directory: directory, binDirectory: bin)
    }

    public func stop() async {
        try? await Self.runAsPostgres("\(binDirectory)/pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func findBinDirectory() -> String? {
        let base = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        return versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "\(base)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }

    private static func runAsPostgres(_ executable: String, _ arguments: [String]) async throws {
        if geteuid() == 0 {
            try await run("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments)
        } else {
            try await run(executable, arguments)
        }
    }

    private static func run(_ executable: String, _ arguments: [String]) async throws {
        let (status, output) = try await Command.run(executable, arguments)
        guard status == 0 else {
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")) failed: \(output)")
        }
    }

    /// Asks the kernel for a free port by binding port 0.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw HarnessError("bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
