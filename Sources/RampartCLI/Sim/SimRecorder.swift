public import Foundation
import Histogram
import RampartModel
import Synchronization

/// What a simulation measured: per operation a latency histogram (HdrHistogram, in
/// microseconds, three significant digits) and its failures by kind; and how late
/// operations started against their schedule, which grows when the server falls behind.
final class SimRecorder: Sendable {
    private struct Operation {
        var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var failures: [String: Int] = [:]
        /// When the first of these operations started and the last ended: the window its
        /// throughput is taken over.
        var first: ContinuousClock.Instant?
        var last: ContinuousClock.Instant?
    }

    private struct State {
        var operations: [String: Operation] = [:]
        var lag = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var inFlight = 0
    }

    private let state = Mutex(State())

    static func microseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
    }

    /// Times `body` as `operation`; a failure is counted by its kind and rethrown.
    func time<T: Sendable>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let started = clock.now
        state.withLock { $0.inFlight += 1 }
        defer { state.withLock { $0.inFlight -= 1 } }
        do {
            let result = try await body()
            let ended = clock.now
            let elapsed = Self.microseconds(ended - started)
            state.withLock {
                _ = $0.operations[operation, default: Operation()].latency.record(elapsed)
                $0.operations[operation]!.first = min($0.operations[operation]!.first ?? started, started)
                $0.operations[operation]!.last = max($0.operations[operation]!.last ?? ended, ended)
            }
            return result
        } catch {
            let kind = Self.kind(of: error)
            state.withLock { $0.operations[operation, default: Operation()].failures[kind, default: 0] += 1 }
            throw error
        }
    }

    func lag(_ late: Duration) {
        let value = Self.microseconds(late)
        state.withLock { _ = $0.lag.record(value) }
    }

    /// Successful operations so far, by name.
    var counts: [String: Int] { state.withLock { $0.operations.mapValues { Int($0.latency.totalCount) } } }
    var failures: Int { state.withLock { $0.operations.values.reduce(0) { $0 + $1.failures.values.reduce(0, +) } } }
    var inFlight: Int { state.withLock { $0.inFlight } }

    /// The figures; each operation's throughput is taken from its first start to its last end.
    func figures() -> (operations: [SimReport.Operation], errors: [String: Int], lag: SimReport.Latency) {
        state.withLock { state in
            let operations = state.operations.sorted { $0.key < $1.key }.map { name, operation in
                let window = operation.first.flatMap { first in operation.last.map { ($0 - first).seconds } } ?? 0
                return SimReport.Operation(
                    name: name, count: Int(operation.latency.totalCount), failed: operation.failures.values.reduce(0, +),
                    perSecond: window > 0 ? Double(operation.latency.totalCount) / window : 0,
                    latency: SimReport.Latency(operation.latency))
            }
            var errors: [String: Int] = [:]
            for (name, operation) in state.operations {
                for (kind, count) in operation.failures { errors["\(name): \(kind)", default: 0] += count }
            }
            return (operations, errors, SimReport.Latency(state.lag))
        }
    }

    /// A short, stable name for what went wrong: the API's error code, or the transport's.
    static func kind(of error: any Error) -> String {
        switch error {
        case let failure as APIFailure: return failure.body.error
        case let failure as CLIError:
            let text = failure.description
            if text.contains("TLS") { return "tls" }
            if text.contains("deadline") || text.contains("timeout") || text.contains("Timeout") { return "timeout" }
            if text.contains("cannot reach") { return "connect" }
            return "client"
        default: return String(describing: type(of: error))
        }
    }
}

/// The outcome of `rampart sim`.
public struct SimReport: Codable, Sendable {
    public struct Latency: Codable, Sendable {
        public var p50Ms: Double
        public var p90Ms: Double
        public var p99Ms: Double
        public var p999Ms: Double
        public var maxMs: Double

        init(_ histogram: Histogram<UInt64>) {
            func ms(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
            p50Ms = histogram.totalCount == 0 ? 0 : ms(50)
            p90Ms = histogram.totalCount == 0 ? 0 : ms(90)
            p99Ms = histogram.totalCount == 0 ? 0 : ms(99)
            p999Ms = histogram.totalCount == 0 ? 0 : ms(99.9)
            maxMs = histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000
        }
    }

    public struct Operation: Codable, Sendable {
        public var name: String
        public var count: Int
        public var failed: Int
        public var perSecond: Double
        public var latency: Latency
    }

    public var server: String
    public var devices: Int
    public var claimed: Int
    public var concurrency: Int
    public var timeScale: Double
    public var enrolSeconds: Double
    public var claimSeconds: Double
    /// From the start of the run until every claimed device held a certificate.
    public var allAttestedSeconds: Double?
    /// `allAttestedSeconds` scaled linearly to a fleet of one million.
    public var projectedMillionSeconds: Double?
    public var runSeconds: Double
    public var operations: [Operation]
    public var errors: [String: Int]
    /// How late operations started against their schedule.
    public var scheduleLag: Latency
    /// Failure reports the service acknowledged, and those it holds afterwards: equal
    /// when no report was lost.
    public var reportsAcknowledged: Int
    public var reportsStored: Int
}
