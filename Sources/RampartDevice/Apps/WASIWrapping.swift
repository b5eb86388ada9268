import Foundation
import Logging
import WasmKit
import WasmKitWASI
import WASI

/// WASI preview 1 as an app sees it. WasmKit's implementation does the work; around every
/// call the runtime
/// - charges the CPU budget and ends an app that was forced off (`prologue`);
/// - checks every guest pointer the call will touch lies inside the app's memory, because
///   WasmKit's memory access stops the whole process on an out-of-bounds pointer — a bad
///   pointer is `EFAULT` to the app, never a crash of the runtime;
/// - offers only the calls in `regions`; the rest (sockets, links, renumbering, times) answer
///   `ENOSYS`;
/// - refuses files without `MutableStorage` (`ENOTCAPABLE`, a counted denial) and growth past
///   its quota (`ENOSPC`);
/// - sleeps in `poll_oneoff` on the app's own condition, so stopping it wakes it.
enum WASIWrapping {
    enum Errno {
        static let fault: UInt32 = 21
        static let noSpace: UInt32 = 51
        static let noSystemCall: UInt32 = 52
        static let notCapable: UInt32 = 76
        static let tooManyFiles: UInt32 = 33
        static let invalid: UInt32 = 28
    }

    /// Per app instance, touched only on its thread.
    final class Counters {
        var openFiles = 0
        var logBytes: UInt64 = 0
    }

    /// A stretch of guest memory a call reads or writes, named by its arguments' positions.
    enum Region {
        /// `size` bytes at the pointer in argument `pointer`.
        case fixed(pointer: Int, size: UInt64)
        /// `args[length]` bytes at `args[pointer]`.
        case span(pointer: Int, length: Int)
        /// `args[count]` records of `size` bytes at `args[pointer]`.
        case records(pointer: Int, count: Int, size: UInt64)
        /// An iovec array (`args[count]` × {ptr, len}) and every buffer it names, at most
        /// `maximumTransfer` bytes in all. WasmKit reads each iovec only when it reaches it, so
        /// for a read (`into`) no buffer may overlap the array: data read into the first
        /// would otherwise rewrite the second after it was checked.
        case iovecs(pointer: Int, count: Int, into: Bool)
        /// The argv (or environ) table and its strings: sizes known from the app's arguments.
        case table(pointer: Int, buffer: Int, strings: [String])
    }

    /// The most one read or write may move (WasmKit counts a call's bytes in 32 bits).
    static let maximumTransfer: UInt64 = 16 << 20
    /// Files an app may hold open at once, beside its standard streams and `/storage`.
    static let openFileLimit = 64
    /// Output an app's run may add to its log; the rest is dropped.
    static let logBytesPerRun = 1 << 20

    static func regions(arguments: [String]) -> [String: [Region]] {
        [
            "args_get": [.table(pointer: 0, buffer: 1, strings: arguments)],
            "args_sizes_get": [.fixed(pointer: 0, size: 4), .fixed(pointer: 1, size: 4)],
            "environ_get": [.table(pointer: 0, buffer: 1, strings: [])],
            "environ_sizes_get": [.fixed(pointer: 0, size: 4), .fixed(pointer: 1, size: 4)],
            "clock_res_get": [.fixed(pointer: 1, size: 8)],
            "clock_time_get": [.fixed(pointer: 2, size: 8)],
            "fd_advise": [],
            "fd_allocate": [],
            "fd_close": [],
            "fd_datasync": [],
            "fd_fdstat_get": [.fixed(pointer: 1, size: 24)],
            "fd_fdstat_set_flags": [],
            "fd_filestat_get": [.fixed(pointer: 1, size: 64)],
            "fd_filestat_set_size": [],
            "fd_pread": [.iovecs(pointer: 1, count: 2, into: true), .fixed(pointer: 4, size: 4)],
            "fd_prestat_get": [.fixed(pointer: 1, size: 8)],
            "fd_prestat_dir_name": [.span(pointer: 1, length: 2)],
            "fd_pwrite": [.iovecs(pointer: 1, count: 2, into: false), .fixed(pointer: 4, size: 4)],
            "fd_read": [.iovecs(pointer: 1, count: 2, into: true), .fixed(pointer: 3, size: 4)],
            "fd_readdir": [.span(pointer: 1, length: 2), .fixed(pointer: 4, size: 4)],
            "fd_seek": [.fixed(pointer: 3, size: 8)],
            "fd_sync": [],
            "fd_tell": [.fixed(pointer: 1, size: 8)],
            "fd_write": [.iovecs(pointer: 1, count: 2, into: false), .fixed(pointer: 3, size: 4)],
            "path_create_directory": [.span(pointer: 1, length: 2)],
            "path_filestat_get": [.span(pointer: 2, length: 3), .fixed(pointer: 4, size: 64)],
            "path_open": [.span(pointer: 2, length: 3), .fixed(pointer: 8, size: 4)],
            "path_remove_directory": [.span(pointer: 1, length: 2)],
            "path_rename": [.span(pointer: 1, length: 2), .span(pointer: 4, length: 5)],
            "path_unlink_file": [.span(pointer: 1, length: 2)],
            "poll_oneoff": [.records(pointer: 0, count: 2, size: 48), .records(pointer: 1, count: 2, size: 32), .fixed(pointer: 3, size: 4)],
            "proc_exit": [],
            "random_get": [.span(pointer: 0, length: 1)],
            "sched_yield": [],
        ]
    }

    static func link(
        _ wasi: WASIBridgeToHost, into imports: inout Imports, store: Store, arguments: [String], storage: StorageQuota?,
        control: AppControl, logger: Logger, app: String, prologue: @escaping (borrowing Caller) throws -> Memory
    ) {
        let regions = regions(arguments: arguments)
        let counters = Counters()
        for (name, function) in wasi.hostFunctions(capabilities: WASICapability.all) {
            let original = function.implementation
            let checks = regions[name]
            let body: Function.Implementation = { caller, args in
                let memory = try prologue(caller)
                guard let checks else { return [.i32(Errno.noSystemCall)] }
                guard Self.inBounds(checks, args, memory) else { return [.i32(Errno.fault)] }
                switch name {
                case "path_open" where storage == nil:
                    control.recordDenial("MutableStorage")
                    logger.warning("denied: file access without MutableStorage", metadata: ["app": "\(app)"])
                    return [.i32(Errno.notCapable)]
                case "path_open":
                    guard counters.openFiles < openFileLimit else { return [.i32(Errno.tooManyFiles)] }
                    let result = try original(memory, args)
                    if result.first?.i32 == 0 { counters.openFiles += 1 }
                    return result
                case "fd_close":
                    let result = try original(memory, args)
                    if result.first?.i32 == 0, args[0].i32 > 3 { counters.openFiles = max(0, counters.openFiles - 1) }
                    return result
                case "fd_write" where args[0].i32 == 1 || args[0].i32 == 2:
                    let bytes = Self.iovecBytes(args[1].i32, args[2].i32, memory)
                    counters.logBytes += bytes
                    if counters.logBytes > UInt64(logBytesPerRun) {
                        // Over this run's share of the log: dropped, but the app sees it written.
                        memory.withUnsafeMutableBufferPointer(offset: UInt(args[3].i32), count: 4) {
                            $0.storeBytes(of: UInt32(bytes).littleEndian, toByteOffset: 0, as: UInt32.self)
                        }
                        return [.i32(0)]
                    }
                case "fd_write":
                    if let storage, !storage.admits(Self.iovecBytes(args[1].i32, args[2].i32, memory)) { return [.i32(Errno.noSpace)] }
                case "fd_pwrite":
                    // Charged up to its end, so writing far past a file's end cannot make a sparse file beyond the quota.
                    let end = args[3].i64.addingReportingOverflow(Self.iovecBytes(args[1].i32, args[2].i32, memory))
                    if let storage, end.overflow || !storage.admits(end.partialValue) { return [.i32(Errno.noSpace)] }
                case "fd_seek" where storage != nil && args[0].i32 > 3:
                    // No position past the quota: a write there would make a sparse file larger than it.
                    let result = try original(memory, args)
                    let position = memory.withUnsafeBufferPointer(offset: UInt(args[3].i32), count: 8) {
                        $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
                    }
                    guard result.first?.i32 == 0, let storage, position > UInt64(storage.limitBytes) else { return result }
                    _ = try original(memory, [args[0], .i64(UInt64(storage.limitBytes)), .i32(0), args[3]])
                    return [.i32(Errno.invalid)]
                case "fd_allocate":
                    if let storage, !storage.admits(args[2].i64) { return [.i32(Errno.noSpace)] }
                case "fd_filestat_set_size":
                    if let storage, !storage.admits(args[1].i64) { return [.i32(Errno.noSpace)] }
                case "poll_oneoff":
                    if let answer = try PollSleep.answer(args, memory: memory, control: control) { return [.i32(answer)] }
                default:
                    break
                }
                return try original(memory, args)
            }
            imports.define(module: "wasi_snapshot_preview1", name: name, Function(store: store, type: function.type, body: body))
        }
    }

    static func inBounds(_ checks: [Region], _ args: [Value], _ memory: Memory) -> Bool {
        let size = UInt64(memory.byteCount)
        func fits(_ pointer: UInt32, _ length: UInt64) -> Bool { UInt64(pointer) + length <= size }
        for check in checks {
            switch check {
            case .fixed(let pointer, let bytes):
                guard fits(args[pointer].i32, bytes) else { return false }
            case .span(let pointer, let length):
                guard fits(args[pointer].i32, UInt64(args[length].i32)) else { return false }
            case .records(let pointer, let count, let bytes):
                guard fits(args[pointer].i32, UInt64(args[count].i32) * bytes) else { return false }
            case .iovecs(let pointer, let count, let into):
                let base = UInt64(args[pointer].i32), n = UInt64(args[count].i32)
                guard n <= 1024, fits(UInt32(base), n * 8) else { return false }
                var total: UInt64 = 0
                for index in 0..<n {
                    let (buffer, length) = iovec(at: base + index * 8, memory)
                    guard fits(buffer, UInt64(length)) else { return false }
                    total += UInt64(length)
                    if into, UInt64(buffer) < base + n * 8, base < UInt64(buffer) + UInt64(length) { return false }
                }
                guard total <= maximumTransfer else { return false }
            case .table(let pointer, let buffer, let strings):
                let bytes = strings.reduce(0) { $0 + UInt64($1.utf8.count) + 1 }
                guard fits(args[pointer].i32, UInt64(strings.count) * 4), fits(args[buffer].i32, bytes) else { return false }
            }
        }
        return true
    }

    static func iovec(at offset: UInt64, _ memory: Memory) -> (UInt32, UInt32) {
        memory.withUnsafeBufferPointer(offset: UInt(offset), count: 8) {
            ($0.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian,
             $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian)
        }
    }

    /// Bytes an iovec array would write (already bounds-checked).
    static func iovecBytes(_ base: UInt32, _ count: UInt32, _ memory: Memory) -> UInt64 {
        (0..<UInt64(count)).reduce(0) { $0 + UInt64(iovec(at: UInt64(base) + $1 * 8, memory).1) }
    }
}

/// An app's mutable storage and its hard quota. Growth is judged before it happens and
/// counted generously — a write counts in full even when it overwrites — so usage never
/// exceeds the quota, at the price of refusing an overwrite when the storage is nearly full.
struct StorageQuota: Sendable {
    let directory: URL
    let limitBytes: Int

    func admits(_ growth: UInt64) -> Bool {
        growth <= UInt64(limitBytes) && UInt64(usedBytes()) + growth <= UInt64(limitBytes)
    }

    /// Each file and directory costs its size plus `entryBytes`, so empty files and
    /// directories are not free.
    static let entryBytes = 256

    func usedBytes() -> Int {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.fileSizeKey]) else { return 0 }
        var total = 0
        for case let url as URL in walker {
            total += Self.entryBytes + ((try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
        }
        return total
    }
}

/// `poll_oneoff` when every subscription is a clock — how `sleep` and `nanosleep` reach the
/// host — waits on the app's condition instead of the thread, so a stop wakes it.
/// Subscriptions on descriptors go to WasmKit.
enum PollSleep {
    static func answer(_ args: [Value], memory: Memory, control: AppControl) throws -> UInt32? {
        let input = UInt64(args[0].i32), output = UInt64(args[1].i32), count = UInt64(args[2].i32), written = UInt(args[3].i32)
        guard count > 0 else { return 28 }  // EINVAL, as the specification asks
        struct Timer { var userdata: UInt64; var deadline: Date }
        var timers: [Timer] = []
        let now = Date()
        let monotonicNow = try MillisecondMonotonicClock().now()
        for index in 0..<count {
            let record = memory.withUnsafeBufferPointer(offset: UInt(input + index * 48), count: 48) { raw -> Timer? in
                guard raw[8] == 0 else { return nil }  // not a clock
                let userdata = raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
                let clock = raw.loadUnaligned(fromByteOffset: 16, as: UInt32.self).littleEndian
                let timeout = raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
                let absolute = raw.loadUnaligned(fromByteOffset: 40, as: UInt16.self).littleEndian & 1 == 1
                let seconds: TimeInterval
                switch (absolute, clock) {
                case (false, _): seconds = Double(timeout) / 1e9
                case (true, 0): seconds = Double(timeout) / 1e9 - now.timeIntervalSince1970
                default: seconds = (Double(timeout) - Double(monotonicNow)) / 1e9
                }
                return Timer(userdata: userdata, deadline: now.addingTimeInterval(max(0, seconds)))
            }
            guard let record else { return nil }
            timers.append(record)
        }
        let earliest = timers.map(\.deadline).min()!
        try control.sleep(until: earliest)
        let due = timers.filter { $0.deadline <= earliest }
        for (slot, timer) in due.enumerated() {
            memory.withUnsafeMutableBufferPointer(offset: UInt(output) + UInt(slot * 32), count: 32) { raw in
                raw.initializeMemory(as: UInt8.self, repeating: 0)
                raw.storeBytes(of: timer.userdata.littleEndian, toByteOffset: 0, as: UInt64.self)
                raw[10] = 0  // eventtype clock; error 0
            }
        }
        memory.withUnsafeMutableBufferPointer(offset: written, count: 4) {
            $0.storeBytes(of: UInt32(due.count).littleEndian, toByteOffset: 0, as: UInt32.self)
        }
        return 0
    }
}
