public import Foundation
public import RampartModel

// The security monitor's socket: a Unix stream socket (mode 0660, so a runtime running as
// another user of the socket's group can reach it) carrying one JSON object per line each
// way. One request, one answer.

struct MonitorRequest: Codable, Sendable {
    enum Operation: String, Codable, Sendable { case identity, evidence, counter, increment }
    var op: Operation
    var nonce: String?
    /// DER SPKI, base64.
    var clientKey: String?
    var counter: MonotonicCounter?
}

struct MonitorResponse: Codable, Sendable {
    var identity: MonitorIdentity?
    var evidence: AttestationEvidence?
    var value: UInt64?
    var error: String?
    var message: String?
}

/// The longest request or answer line the socket accepts.
let monitorLineLimit = 256 * 1024

/// Serves a monitor on a Unix socket until the task is cancelled.
public enum MonitorServer {
    /// - Parameter ready: called once the socket accepts connections.
    public static func run(
        _ monitor: any SecurityMonitorInterface, socketPath: String, ready: @Sendable () -> Void = {}
    ) async throws {
        try await LineSocket.serve(path: socketPath, mode: 0o660, lineLimit: monitorLineLimit, ready: ready) { line in
            (try? JSONEncoder.rampart.encode(await answer(line, monitor))) ?? Data()
        }
    }

    static func answer(_ line: [UInt8], _ monitor: any SecurityMonitorInterface) async -> MonitorResponse {
        do {
            guard let request = try? JSONDecoder.rampart.decode(MonitorRequest.self, from: Data(line)) else {
                throw DeviceError(code: "bad_request", message: "the monitor understands identity, evidence, counter and increment")
            }
            switch request.op {
            case .identity:
                return MonitorResponse(identity: try await monitor.identity())
            case .evidence:
                guard let nonce = request.nonce, let key = request.clientKey.flatMap({ Data(base64Encoded: $0) }) else {
                    throw DeviceError(code: "bad_request", message: "evidence needs a nonce and a base64 clientKey")
                }
                return MonitorResponse(evidence: try await monitor.evidence(nonce: nonce, clientKey: Array(key)))
            case .counter, .increment:
                guard let counter = request.counter else {
                    throw DeviceError(code: "bad_request", message: "name the counter: system-software, applications or app:<component>")
                }
                let value =
                    request.op == .counter
                    ? try await monitor.counter(counter) : try await monitor.incrementCounter(counter)
                return MonitorResponse(value: value)
            }
        } catch let error as any RampartError {
            return MonitorResponse(error: error.code, message: error.message)
        } catch {
            return MonitorResponse(error: "monitor_failed", message: "\(error)")
        }
    }
}

/// The runtime's side of the monitor socket. Each call is one short connection, so a
/// restarted monitor is picked up without ceremony.
public struct MonitorClient: SecurityMonitorInterface {
    public let socketPath: String
    public init(socketPath: String) { self.socketPath = socketPath }

    public func identity() async throws -> MonitorIdentity {
        try require(try await call(MonitorRequest(op: .identity)).identity)
    }

    public func evidence(nonce: String, clientKey: [UInt8]) async throws -> AttestationEvidence {
        try require(
            try await call(MonitorRequest(op: .evidence, nonce: nonce, clientKey: Data(clientKey).base64EncodedString()))
                .evidence)
    }

    public func counter(_ counter: MonotonicCounter) async throws -> UInt64 {
        try require(try await call(MonitorRequest(op: .counter, counter: counter)).value)
    }

    public func incrementCounter(_ counter: MonotonicCounter) async throws -> UInt64 {
        try require(try await call(MonitorRequest(op: .increment, counter: counter)).value)
    }

    private func require<T>(_ value: T?) throws -> T {
        guard let value else { throw DeviceError(code: "monitor_protocol", message: "the monitor answered without a value") }
        return value
    }

    private func call(_ request: MonitorRequest) async throws -> MonitorResponse {
        let line: [UInt8]
        do {
            line = try await LineSocket.call(path: socketPath, request: try JSONEncoder.rampart.encode(request), lineLimit: monitorLineLimit)
        } catch let error as DeviceError where error.code == "socket_unreachable" {
            throw DeviceError(code: "monitor_unreachable", message: "cannot reach the security monitor: \(error.message)")
        }
        guard let response = try? JSONDecoder.rampart.decode(MonitorResponse.self, from: Data(line)) else {
            throw DeviceError(code: "monitor_protocol", message: "the monitor's answer is not JSON")
        }
        if let code = response.error {
            throw DeviceError(code: code, message: response.message ?? code)
        }
        return response
    }
}
