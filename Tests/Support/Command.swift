public import Foundation
import RampartDevice

/// Runs programs for tests with posix_spawn, polling waitpid between short sleeps.
///
/// Foundation's `Process.waitUntilExit` was seen to hang here when the child forks
/// (`runuser`, `pg_ctl`); a blocking waitpid would instead hold one of the two cooperative
/// threads for the child's whole run and starve the in-process servers tests talk to.
/// Output goes to a file, not a pipe: `pg_ctl start` leaves the server holding what it
/// inherited, so a pipe would never reach end-of-file.
public enum Command {
    /// Runs `executable` to completion and returns its exit status and output.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String) {
        let outputPath = (NSTemporaryDirectory() as NSString).appendingPathComponent("rampart-cmd-\(UUID().uuidString).log")
        defer { unlink(outputPath) }
        let pid = try spawn(executable, arguments, output: outputPath, environment: environment)
        let status = try await wait(for: pid)
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// Starts `executable` with standard output and error going to `output`.
    public static func spawn(
        _ executable: String, _ arguments: [String], output: String, environment: [String: String] = [:]
    ) throws -> pid_t {
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { $1 }
        return try ChildProcess.spawn(executable, arguments, output: output, environment: variables.map { "\($0.key)=\($0.value)" })
    }

    /// Waits for `pid` to end and returns its exit status (128 + signal when killed).
    public static func wait(for pid: pid_t) async throws -> Int32 {
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { throw HarnessError("waitpid failed for process \(pid)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
