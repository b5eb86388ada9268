public import Foundation
import Logging
public import RampartImage
public import RampartModel
import Synchronization

/// Runs the device's apps, each in its own container on its own thread: starts them,
/// restarts a failed one with exponential backoff, stops restarting one that is in a crash
/// loop, stops them (terminate event, then forced off after the grace period), routes
/// messages between them and tells them about updates and system events. A trap, an
/// out-of-memory or a runaway loop ends that app only.
public final class AppSupervisor: Sendable {
    public struct RestartPolicy: Sendable {
        /// The wait before the first restart; it doubles with each failure in a row.
        public var initialBackoff: TimeInterval = 1
        public var maximumBackoff: TimeInterval = 300
        /// A run this long resets the backoff.
        public var healthyAfter: TimeInterval = 60
        /// This many failures within `crashLoopWindow` is a crash loop: no more restarts.
        public var crashLoopFailures = 5
        public var crashLoopWindow: TimeInterval = 600
        /// How long a stopped app has to return after its terminate event.
        public var stopGrace: TimeInterval = 2

        public init() {}
        public static let standard = RestartPolicy()
    }

    public enum State: String, Codable, Sendable {
        case running
        /// Failed; restarts after the backoff.
        case backingOff = "backing-off"
        /// Failed too often; stays down until started again.
        case crashLoop = "crash-loop"
        /// Returned from `main` with status 0.
        case exited
        case stopped
    }

    public struct Status: Codable, Sendable, Equatable {
        public var name: String
        public var componentId: ComponentID
        public var imageId: ImageID?
        public var state: State
        public var restarts: Int
        public var lastExit: String?
        /// Host calls refused per capability since the app was started.
        public var deniedCalls: [String: Int]
        public var startedAt: Date?
    }

    private struct Entry {
        var definition: AppDefinition
        var control: AppControl?
        var state: State
        var generation = 0
        var runs = 0
        var restarts = 0
        var failures: [Date] = []
        var backoff: TimeInterval
        var lastExit: AppExit?
        var startedAt: Date?
        var denials: [String: Int] = [:]
    }

    public let environment: AppEnvironment
    public let policy: RestartPolicy
    private let entries = Mutex<[ComponentID: Entry]>([:])
    private let onExit: (@Sendable (AppDefinition, AppExit, _ crashLoop: Bool) -> Void)?

    /// `onExit` hears every end of every run, and whether it left the app in a crash loop
    /// (``FailureReporter/appEnded(_:_:crashLoop:)`` turns failures into reports).
    public init(
        environment: AppEnvironment, policy: RestartPolicy = .standard,
        onExit: (@Sendable (AppDefinition, AppExit, _ crashLoop: Bool) -> Void)? = nil
    ) {
        self.environment = environment
        self.policy = policy
        self.onExit = onExit
    }

    /// Starts `app` (replacing a stopped or failed app with the same component).
    public func start(_ app: AppDefinition) throws {
        let component = app.manifest.componentId
        let generation = try entries.withLock { entries -> Int in
            if let current = entries[component], current.state == .running {
                throw DeviceError(code: "app_running", message: "\(current.definition.manifest.name) is already running; stop it first")
            }
            var entry = entries[component] ?? Entry(definition: app, state: .stopped, backoff: policy.initialBackoff)
            entry.definition = app
            entry.generation += 1
            entry.failures = []
            entry.backoff = policy.initialBackoff
            entries[component] = entry
            return entry.generation
        }
        launch(component, generation: generation)
    }

    private func launch(_ component: ComponentID, generation: Int) {
        let control = AppControl()
        let launched: (AppDefinition, Int)? = entries.withLock { entries in
            guard var entry = entries[component], entry.generation == generation else { return nil }
            entry.control = control
            entry.state = .running
            entry.startedAt = Date()
            entry.runs += 1
            entries[component] = entry
            return (entry.definition, entry.runs)
        }
        guard let (definition, run) = launched else { return }
        environment.logger.info("app started", metadata: ["app": "\(definition.manifest.name)", "run": "\(run)"])
        let environment = environment
        let thread = Thread { [self] in
            let exit = AppContainer.run(definition, environment: environment, control: control, router: self)
            finished(component, generation: generation, control: control, exit: exit)
        }
        thread.name = "app \(definition.manifest.name)"
        thread.stackSize = 16 << 20
        thread.start()
    }

    private func finished(_ component: ComponentID, generation: Int, control: AppControl, exit: AppExit) {
        let now = Date()
        let (definition, restartAfter): (AppDefinition?, TimeInterval?) = entries.withLock { entries in
            guard var entry = entries[component], entry.control === control else { return (nil, nil) }
            entry.control = nil
            entry.lastExit = exit
            for (capability, count) in control.deniedCalls { entry.denials[capability, default: 0] += count }
            var restartAfter: TimeInterval?
            if control.wasAskedToStop || entry.generation != generation {
                entry.state = .stopped
            } else if !exit.isFailure {
                entry.state = .exited
            } else {
                if let started = entry.startedAt, now.timeIntervalSince(started) >= policy.healthyAfter {
                    entry.backoff = policy.initialBackoff
                }
                entry.failures = entry.failures.filter { now.timeIntervalSince($0) < policy.crashLoopWindow } + [now]
                if entry.failures.count >= policy.crashLoopFailures {
                    entry.state = .crashLoop
                } else {
                    entry.state = .backingOff
                    restartAfter = entry.backoff
                    entry.backoff = min(entry.backoff * 2, policy.maximumBackoff)
                }
            }
            entries[component] = entry
            return (entry.definition, restartAfter)
        }
        guard let definition else { return }
        let name = definition.manifest.name
        if exit.isFailure {
            environment.logger.error("app \(exit)", metadata: ["app": "\(name)"])
        } else {
            environment.logger.info("app \(exit)", metadata: ["app": "\(name)"])
        }
        onExit?(definition, exit, state(of: component) == .crashLoop)
        if let restartAfter {
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(Int(restartAfter * 1000)))
                let current = entries.withLock { $0[component]?.generation == generation && $0[component]?.state == .backingOff }
                guard current else { return }
                entries.withLock { $0[component]?.restarts += 1 }
                launch(component, generation: generation)
            }
        } else if state(of: component) == .crashLoop {
            environment.logger.critical(
                "app is in a crash loop: \(policy.crashLoopFailures) failures within \(Int(policy.crashLoopWindow)) s; not restarting it",
                metadata: ["app": "\(name)"])
        }
    }

    /// Stops an app: its terminate event, then forced off after `policy.stopGrace`. Returns
    /// how its last run ended (nil if it was not running).
    @discardableResult
    public func stop(_ component: ComponentID) async -> AppExit? {
        let running: (AppControl, Int)? = entries.withLock { entries in
            guard var entry = entries[component] else { return nil }
            entry.generation += 1  // cancels a pending restart, and one a failure racing this stop would schedule
            guard let control = entry.control else {
                entry.state = .stopped
                entries[component] = entry
                return nil
            }
            entries[component] = entry
            return (control, entry.runs)
        }
        guard let (control, run) = running else { return nil }
        control.requestStop()
        if let exit = await exit(of: component, run: run, within: policy.stopGrace) { return exit }
        control.forceOff()
        return await exit(of: component, run: run, within: 10)
    }

    public func stopAll() async {
        let components = entries.withLock { Array($0.keys) }
        await withTaskGroup(of: Void.self) { group in
            for component in components { group.addTask { await self.stop(component) } }
        }
    }

    /// Forgets a stopped app (it is no longer installed).
    public func remove(_ component: ComponentID) async {
        await stop(component)
        _ = entries.withLock { $0.removeValue(forKey: component) }
    }

    private func exit(of component: ComponentID, run: Int, within seconds: TimeInterval) async -> AppExit? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            let ended = entries.withLock { entries -> AppExit?? in
                guard let entry = entries[component] else { return .some(nil) }
                return entry.runs == run && entry.control == nil ? .some(entry.lastExit) : nil
            }
            if let ended { return ended }
            try? await Task.sleep(for: .milliseconds(10))
        } while Date() < deadline
        return nil
    }

    /// Waits until `component` has ended a run (any run after the one under way at the call).
    public func nextExit(of component: ComponentID, within seconds: TimeInterval) async -> AppExit? {
        let run = entries.withLock { $0[component]?.runs ?? 0 }
        return await exit(of: component, run: run, within: seconds)
    }

    public func state(of component: ComponentID) -> State? { entries.withLock { $0[component]?.state } }

    public func status() -> [Status] {
        entries.withLock { entries in
            entries.map { component, entry in
                var denials = entry.denials
                for (capability, count) in entry.control?.deniedCalls ?? [:] { denials[capability, default: 0] += count }
                return Status(
                    name: entry.definition.manifest.name, componentId: component, imageId: entry.definition.imageID,
                    state: entry.state, restarts: entry.restarts, lastExit: entry.lastExit?.description,
                    deniedCalls: denials, startedAt: entry.startedAt)
            }.sorted { $0.name < $1.name }
        }
    }

    private var runningControls: [(AppManifest, AppControl)] {
        entries.withLock { $0.values.compactMap { entry in entry.control.map { (entry.definition.manifest, $0) } } }
    }

    /// Tells apps that subscribed (`SystemEventNotifications`) about `event`.
    public func notify(_ event: String) {
        for (_, control) in runningControls where control.isSubscribedToSystemEvents { control.post(.system(event)) }
    }

    /// Tells the apps holding `SoftwareUpdateDeferral` that an update installs at
    /// `installsAt`, gives them up to `answerWithin` seconds to defer it (no longer once every
    /// one of them has), and returns the latest time one of them asked for (nil: nobody deferred).
    public func announceUpdate(installsAt: Date, answerWithin seconds: TimeInterval) async -> Date? {
        let deferring = runningControls.filter { $0.0.capabilities.softwareUpdateDeferral == true }.map(\.1)
        notify("update_pending")
        guard !deferring.isEmpty else { return nil }
        for control in deferring {
            _ = control.takeDeferral()
            control.post(.updatePending(installsAt: installsAt))
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline, !deferring.allSatisfy(\.hasDeferral) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return deferring.compactMap { $0.takeDeferral() }.max()
    }
}

extension AppSupervisor: AppMessageRouter {
    func send(from sender: AppManifest, to target: ComponentID, data: [UInt8]) -> Int32 {
        let receiver = entries.withLock { $0[target].flatMap { entry in entry.control.map { (entry.definition.manifest, $0) } } }
        guard let (manifest, control) = receiver else { return HostFailure.notFound.code }
        guard (manifest.capabilities.allowedApplicationConnections ?? []).contains(where: { ComponentID($0) == sender.componentId }) else {
            return HostFailure.denied.code
        }
        control.post(.message(from: sender.componentId, data: data))
        return 0
    }
}
