import Foundation
import NIOCore
import NIOPosix

/// A Unix stream socket carrying one JSON object per line each way, one answer per request:
/// the security monitor's socket and the development-mode debug socket.
enum LineSocket {
    /// Serves `path` until the task is cancelled. The socket is bound inside a fresh 0700
    /// directory, given `mode`, and only then renamed into place: never briefly open to
    /// everyone, and without touching the process's umask.
    static func serve(
        path: String, mode: mode_t, lineLimit: Int, ready: @Sendable () -> Void = {},
        answer: @escaping @Sendable ([UInt8]) async -> Data
    ) async throws {
        let staging = "\(path).staging-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        guard mkdir(staging, 0o700) == 0 else {
            throw DeviceError(code: "socket_failed", message: "cannot create \(staging): \(String(cString: strerror(errno)))")
        }
        defer { rmdir(staging) }
        let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: "\(staging)/socket", cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        guard chmod("\(staging)/socket", mode) == 0, rename("\(staging)/socket", path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await server.channel.close()
            throw DeviceError(code: "socket_failed", message: "cannot put the socket at \(path): \(reason)")
        }
        ready()
        defer { unlink(path) }
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        try? await connection.executeThenClose { inbound, outbound in
                            var lines = LineBuffer(limit: lineLimit)
                            for try await chunk in inbound {
                                guard try lines.append(chunk) else { continue }
                                while let line = lines.next() {
                                    var out = ByteBuffer(bytes: Array(await answer(line)))
                                    out.writeInteger(UInt8(ascii: "\n"))
                                    try await outbound.write(out)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends one request line and returns the answer line.
    static func call(path: String, request: Data, lineLimit: Int) async throws -> [UInt8] {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw DeviceError(code: "socket_unreachable", message: "cannot reach \(path): \(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            var out = ByteBuffer(bytes: Array(request))
            out.writeInteger(UInt8(ascii: "\n"))
            try await outbound.write(out)
            var lines = LineBuffer(limit: lineLimit)
            for try await chunk in inbound {
                guard try lines.append(chunk), let line = lines.next() else { continue }
                return line
            }
            throw DeviceError(code: "socket_protocol", message: "\(path) closed the connection without answering")
        }
    }
}

/// Splits a byte stream into newline-terminated lines, refusing overlong ones.
struct LineBuffer {
    let limit: Int
    private var pending: [UInt8] = []

    init(limit: Int) { self.limit = limit }

    /// Adds `chunk`; true when at least one complete line is waiting.
    mutating func append(_ chunk: ByteBuffer) throws -> Bool {
        pending.append(contentsOf: chunk.readableBytesView)
        let complete = pending.contains(UInt8(ascii: "\n"))
        guard complete || pending.count <= limit else {
            throw DeviceError(code: "socket_protocol", message: "a line longer than \(limit) bytes")
        }
        return complete
    }

    mutating func next() -> [UInt8]? {
        guard let end = pending.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = Array(pending[..<end])
        pending.removeSubrange(...end)
        return line
    }
}
