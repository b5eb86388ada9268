public import Foundation

/// Starting a child process with posix_spawn: standard input from /dev/null and output to a
/// file when asked, and — what `posix_spawn` does not do by itself — an empty signal mask
/// and default signal actions. A child otherwise inherits the mask of the spawning thread,
/// and Swift's and Dispatch's threads block most signals: nginx, for one, then never sees
/// the SIGTERM meant to stop it.
public enum ChildProcess {
    /// Starts `executable` with `arguments`; returns its process ID.
    /// - Parameters:
    ///   - output: a file for standard output and error (created or truncated); nil inherits them.
    ///   - environment: `NAME=value` entries; nil inherits this process's environment.
    public static func spawn(_ executable: String, _ arguments: [String], output: String? = nil, environment: [String]? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let status: Int32
        if let environment {
            let envp = environment.map { strdup($0) } + [nil]
            defer { envp.forEach { free($0) } }
            status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        } else {
            status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        }
        guard status == 0 else {
            throw DeviceError(code: "spawn_failed", message: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// A loopback port nobody listens on now (the kernel's pick for port 0), for a child server.
    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DeviceError(code: "socket_failed", message: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw DeviceError(code: "socket_failed", message: "bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts `executable` with standard output and error going to `output`, its
    /// environment this process's with `environment` on top.
    public static func spawn(
        _ executable: String, _ arguments: [String], output: String, environment: [String: String]
    ) throws -> pid_t {
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { $1 }
        return try spawn(executable, arguments, output: output, environment: variables.map { "\($0.key)=\($0.value)" })
    }

    /// Runs `executable` to completion and returns its exit status and output (standard
    /// output and error together). Output goes through a file, not a pipe: a child that
    /// leaves a daemon behind (`pg_ctl start`) would keep a pipe open for ever.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String) {
        let outputPath = (NSTemporaryDirectory() as NSString).appendingPathComponent("rampart-run-\(UUID().uuidString).log")
        defer { unlink(outputPath) }
        let pid = try spawn(executable, arguments, output: outputPath, environment: environment)
        let status = try await wait(for: pid)
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// Waits for `pid` to end and returns its exit status (128 + signal when killed),
    /// polling between short sleeps: a blocking waitpid would hold one of the few
    /// cooperative threads for the child's whole run.
    public static func wait(for pid: pid_t) async throws -> Int32 {
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR {
                throw DeviceError(code: "waitpid_failed", message: "waitpid failed for process \(pid): \(String(cString: strerror(errno)))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
