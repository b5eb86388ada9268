public import RampartDevice

/// Runs programs for tests: `ChildProcess` (posix_spawn, an empty signal mask, output to a
/// file, waitpid polled between short sleeps).
///
/// Foundation's `Process.waitUntilExit` was seen to hang here when the child forks
/// (`runuser`, `pg_ctl`).
public typealias Command = ChildProcess
