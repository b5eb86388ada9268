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
}
