public import Foundation
import RampartDevice

/// A throwaway PostgreSQL cluster (Debian's server binaries): initdb in a temporary
/// directory, started on a free loopback port, stopped and deleted afterwards. Runs the
/// server as the `postgres` user when run as root (PostgreSQL refuses to run as root).
/// For the benchmarks of nodes on PostgreSQL, and for the tests.
public struct LocalPostgres: Sendable {
    /// `postgres://rampart@127.0.0.1:PORT/postgres`, trusted without a password.
    public let url: String
    private let directory: String
    private let binDirectory: String

    /// Runs `body` with the cluster's URL; the cluster is gone afterwards.
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

    public static func start() async throws -> LocalPostgres {
        guard let bin = findBinDirectory() else {
            throw CLIError("PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/install-deps.sh")
        }
        let directory = try makeTemporaryDirectory(prefix: "rampart-pg")
        if geteuid() == 0 { try await run("/bin/chown", ["postgres:postgres", directory]) }
        try await runAsPostgres("\(bin)/initdb", ["-D", "\(directory)/data", "-U", "rampart", "--auth=trust", "-E", "UTF8", "--no-sync"])
        let port = try ChildProcess.freeLoopbackPort()
        try await runAsPostgres(
            "\(bin)/pg_ctl",
            [
                "-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "30", "-o",
                "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start",
            ])
        return LocalPostgres(url: "postgres://rampart@127.0.0.1:\(port)/postgres", directory: directory, binDirectory: bin)
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
        let (status, output) = try await ChildProcess.run(executable, arguments)
        guard status == 0 else {
            throw CLIError("\(executable) \(arguments.joined(separator: " ")) failed: \(output)")
        }
    }
}
