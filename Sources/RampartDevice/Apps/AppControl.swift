public import Foundation
public import RampartModel

/// Something the runtime tells an app through `rampart_event_wait`.
public enum AppEvent: Sendable, Equatable {
    /// Stop now: the app has 2 seconds to return from `main` before it is forced off.
    case terminate
    /// A software update waits for this app (`SoftwareUpdateDeferral`); it installs at
    /// `installsAt` unless the app defers it.
    case updatePending(installsAt: Date)
    /// A notification for apps with `SystemEventNotifications`: `update_pending`,
    /// `update_installed`, `certificate_renewed`.
    case system(String)
    /// A message from another app (`AllowedApplicationConnections` on both sides).
    case message(from: ComponentID, data: [UInt8])

    /// The number `rampart_event_wait` returns (see rampart.h).
    var kind: Int32 {
        switch self {
        case .terminate: 1
        case .updatePending: 2
        case .system: 3
        case .message: 4
        }
    }

    /// The bytes written into the app's buffer.
    var payload: [UInt8] {
        switch self {
        case .terminate: []
        case .updatePending(let installsAt): Array(#"{"installsAt":"\#(installsAt.formatted(.iso8601))"}"#.utf8)
        case .system(let name): Array(name.utf8)
        case .message(let sender, let data): Array(sender.description.utf8) + data
        }
    }
}

/// Thrown out of a host call once the runtime forces an app off; it unwinds the app.
struct AppForcedOff: Error {}

/// The state an app's thread shares with the supervisor: its event queue, the stop
/// request, its deferral, its subscriptions and the denials it met. Guarded by one condition
/// so an app blocked in `rampart_event_wait` or a sleep wakes at once when it is stopped.
final class AppControl: @unchecked Sendable {
    /// Events waiting beyond this many drop the oldest message first.
    static let queueLimit = 256

    private let condition = NSCondition()
    private var events: [AppEvent] = []
    private var forcedOff = false
    private var stopRequested = false
    private var deferredUntil: Date?
    private var subscribed = false
    private var denials: [String: Int] = [:]
    private var droppedEvents = 0

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    func post(_ event: AppEvent) {
        locked {
            if events.count >= Self.queueLimit {
                let victim = events.firstIndex { if case .message = $0 { true } else { false } } ?? 0
                events.remove(at: victim)
                droppedEvents += 1
            }
            events.append(event)
            condition.broadcast()
        }
    }

    /// Waits up to `timeout` (forever when nil) for the next event.
    func next(timeout: TimeInterval?) throws -> AppEvent? {
        try locked {
            let deadline = timeout.map { Date().addingTimeInterval($0) }
            while events.isEmpty && !forcedOff {
                if let deadline {
                    if !condition.wait(until: deadline) { break }
                } else {
                    condition.wait()
                }
            }
            if forcedOff { throw AppForcedOff() }
            return events.isEmpty ? nil : events.removeFirst()
        }
    }

    /// Sleeps until `deadline`; returns early once the app is asked to stop (so it can see its
    /// terminate event) and throws as soon as it is forced off.
    func sleep(until deadline: Date) throws {
        try locked {
            while !forcedOff && !stopRequested && Date() < deadline { _ = condition.wait(until: deadline) }
            if forcedOff { throw AppForcedOff() }
        }
    }

    /// Asks the app to stop: a terminate event it can see.
    func requestStop() {
        locked { stopRequested = true }
        post(.terminate)  // broadcasts: a sleeper wakes too
    }

    /// Ends the app at its next host call (and wakes it if it waits in one); a loop that
    /// makes none runs out of fuel, which is no longer refilled.
    func forceOff() {
        locked {
            forcedOff = true
            condition.broadcast()
        }
    }

    func checkAlive() throws { if locked({ forcedOff }) { throw AppForcedOff() } }
    var isForcedOff: Bool { locked { forcedOff } }
    var wasAskedToStop: Bool { locked { stopRequested } }

    func subscribeToSystemEvents() { locked { subscribed = true } }
    var isSubscribedToSystemEvents: Bool { locked { subscribed } }

    func deferUpdate(until date: Date) { locked { deferredUntil = max(deferredUntil ?? date, date) } }
    var hasDeferral: Bool { locked { deferredUntil != nil } }
    /// The deferral the app asked for since the last call, cleared by reading it.
    func takeDeferral() -> Date? {
        locked {
            defer { deferredUntil = nil }
            return deferredUntil
        }
    }

    func recordDenial(_ capability: String) { locked { denials[capability, default: 0] += 1 } }
    var deniedCalls: [String: Int] { locked { denials } }
    var droppedEventCount: Int { locked { droppedEvents } }
}
