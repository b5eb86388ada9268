public import Foundation
public import X509
import SwiftASN1
import RampartModel

/// Which runtime executable a start of `rampartd run` becomes — the device's boot loader.
///
/// The executable the init system starts (the *factory* runtime, `RAMPARTD_FACTORY_EXECUTABLE`
/// once it has handed over) decides from `boot.json`:
///
/// 1. A trial with new system software and an attempt left: spend the attempt (recording a
///    fresh token), verify the slot's executable, and `exec` it with the token in its
///    environment. Only the start holding the token may reach the health verdict; any later
///    start finds the attempt spent.
/// 2. A trial whose attempt is spent by a start that never reached its verdict (it crashed,
///    hung, or the power went), or whose executable no longer verifies: roll back.
/// 3. Otherwise the active slot's executable if it has one and it verifies, else the factory
///    runtime.
///
/// Every executable is verified before it runs: its package's signature chains to the pinned
/// root as the service's system software, and the file is the package's payload byte for
/// byte. The security monitor the chosen runtime starts then measures it, so what attests is
/// what runs.
public struct SystemBoot: Sendable {
    public static let factoryVariable = "RAMPARTD_FACTORY_EXECUTABLE"
    public static let attemptVariable = "RAMPARTD_TRIAL_ATTEMPT"

    public let state: DeviceState
    public var now: @Sendable () -> Date = { Date() }
    /// Hears the rollbacks decided here.
    public var reporter: FailureReporter?

    public init(state: DeviceState) { self.state = state }

    var slots: SlotStore { SlotStore(directory: state.directory) }

    /// The executable this process runs, with links resolved.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The runtime the init system starts: the one to return to for a clean start.
    public static var factoryExecutable: String {
        ProcessInfo.processInfo.environment[factoryVariable] ?? currentExecutable
    }

    /// Whether this process is the start that boots `trial`'s new system software.
    public func isAttempt(_ trial: BootRecord.Trial?) -> Bool {
        guard let trial, let token = trial.attempt else { return false }
        return ProcessInfo.processInfo.environment[Self.attemptVariable] == token
            && Self.currentExecutable == Self.resolved(slots.executablePath(trial.slot))
    }

    /// Whether this process boots new system software on trial.
    public func isAttemptInProgress() -> Bool { isAttempt(try? slots.boot().trial) }

    /// Decides which executable runs; nil when this one should go on. Writes the spent attempt
    /// or a rollback to `boot.json` before answering. `log` hears each decision worth telling.
    /// Without `trials` (a command that only attests or shows the identity) a trial is left
    /// for the next `rampartd run` or `update`, and the active slot's runtime chosen.
    public func select(trials: Bool = true, log: (String) -> Void) async throws -> String? {
        let slots = self.slots
        var boot = try slots.boot()
        if isAttempt(boot.trial) { return nil }
        let root = try? Certificate(pemEncoded: String(contentsOfFile: state.serviceRootPath, encoding: .utf8))
        if trials, var trial = boot.trial, let system = slots.systemImage(in: trial.slot) {
            let attempted = slots.images(in: trial.slot) ?? []
            if trial.attemptsLeft > 0 {
                if let root, let executable = await slots.verifiedExecutable(in: trial.slot, root: root, now: now()) {
                    let token = UUID().uuidString
                    trial.attemptsLeft -= 1
                    trial.attempt = token
                    boot.trial = trial
                    try slots.write(boot)
                    UpdateCheckpoint.systemTrialSelected.reach()
                    setenv(Self.attemptVariable, token, 1)
                    log("booting system software \(system.version) on trial from slot \(trial.slot)")
                    return Self.resolved(executable) == Self.currentExecutable ? nil : executable
                }
                boot.rollBack(
                    reason: "verification_failed", detail: "system software \(system.version) in slot \(trial.slot) does not verify",
                    attempted: attempted)
            } else {
                boot.rollBack(
                    reason: "interrupted", detail: "system software \(system.version) did not reach its health verdict",
                    attempted: attempted)
            }
            try slots.write(boot)
            log("rolled back: \(boot.lastRollback?.detail ?? "")")
            reporter?.rolledBack(
                attempted.filter { $0.kind == .systemSoftware }, reason: boot.lastRollback?.reason ?? "interrupted",
                detail: boot.lastRollback?.detail ?? "")
        }
        unsetenv(Self.attemptVariable)
        var target = Self.factoryExecutable
        if let active = boot.active, let system = slots.systemImage(in: active) {
            if let root, let executable = await slots.verifiedExecutable(in: active, root: root, now: now()) {
                target = executable
            } else {
                log("system software \(system.version) in slot \(active) does not verify; starting the factory runtime")
            }
        }
        return Self.resolved(target) == Self.currentExecutable ? nil : target
    }

    /// `path` absolute, with links resolved (itself when it does not exist).
    static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    /// Records that the start on trial failed its health check (e.g. attestation refused the
    /// new system software); the next start goes back to what ran before.
    public func failAttempt(reason: String, detail: String) throws {
        var boot = try slots.boot()
        guard isAttempt(boot.trial), let trial = boot.trial else { return }
        boot.rollBack(reason: reason, detail: detail, attempted: slots.images(in: trial.slot) ?? [])
        try slots.write(boot)
    }

    /// Replaces this process with `executable`, same arguments; the factory runtime's path
    /// goes along so a later restart can start over from it. Returns only on failure.
    public static func exec(_ executable: String) throws -> Never {
        if ProcessInfo.processInfo.environment[factoryVariable] == nil { setenv(factoryVariable, currentExecutable, 1) }
        let arguments = [executable] + CommandLine.arguments.dropFirst()
        let argv = arguments.map { strdup($0) } + [nil]
        fflush(nil)
        execv(executable, argv)
        throw DeviceError(code: "exec_failed", message: "cannot start \(executable): \(String(cString: strerror(errno)))")
    }

    /// Starts over from the factory runtime, which selects again — a reboot, minus the kernel.
    public static func restart() throws -> Never {
        unsetenv(attemptVariable)
        try exec(factoryExecutable)
    }
}

extension DeviceState {
    /// The version and security version of the system software this process runs: the
    /// installed release's when it runs from a slot, else the factory build's.
    public func runningSystemSoftware(factoryVersion: String, factorySecurityVersion: Int = 1) -> (version: String, securityVersion: Int) {
        let slots = SlotStore(directory: directory)
        let current = SystemBoot.currentExecutable
        for slot in ["a", "b"] where SystemBoot.resolved(slots.executablePath(slot)) == current {
            if let image = slots.systemImage(in: slot) { return (image.version, image.securityVersion) }
        }
        return (factoryVersion, factorySecurityVersion)
    }
}
