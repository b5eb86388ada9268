public import Foundation
public import Logging
public import RampartImage
public import RampartModel
import Synchronization
@_spi(Fuzzing) import WasmKit  // Store.resourceLimiter: the only way WasmKit 0.4 bounds memory growth
import WasmKitWASI
import WASI

/// An app ready to run: its manifest, its module, and the image it came from.
public struct AppDefinition: Sendable {
    public var manifest: AppManifest
    public var wasm: Data
    public var imageID: ImageID?
    /// Sideloaded in development mode: it may claim any component ID, so it gets storage of
    /// its own and never sees the deployed app's files.
    public var sideloaded: Bool

    public init(manifest: AppManifest, wasm: Data, imageID: ImageID? = nil, sideloaded: Bool = false) {
        self.manifest = manifest
        self.wasm = wasm
        self.imageID = imageID
        self.sideloaded = sideloaded
    }

    public init(package: ImagePackage) throws {
        guard let manifest = package.manifest else {
            throw DeviceError(code: "not_an_app", message: "\(package.metadata.name) is system software, not an app")
        }
        self.init(manifest: try AppManifest(json: manifest), wasm: package.payload, imageID: package.metadata.imageId)
    }
}

/// How one run of an app ended.
public enum AppExit: Sendable, Equatable, CustomStringConvertible {
    /// `main` returned or the app called `exit`; 0 is success.
    case exited(UInt32)
    /// A WebAssembly trap: the first line of WasmKit's message, and the backtrace's frames,
    /// innermost first (names from the module's name section, else `wasm function[N]`).
    case trapped(String, frames: [String] = [])
    /// It trapped after the runtime refused to grow its memory past `Limits.MemoryKB`.
    case outOfMemory(String)
    /// It spent more fuel than `Limits.CpuFuelPerSecond` allows without yielding.
    case cpuBudgetExceeded
    /// It was asked to stop and did not within the grace period.
    case forcedOff
    /// It never ran: the module did not link or instantiate.
    case failedToStart(String)

    /// Whether this end was a failure (restarted with backoff, reported by issue 6).
    public var isFailure: Bool {
        switch self {
        case .exited(let code): code != 0
        case .forcedOff: false
        default: true
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .trapped(let trap, _): "trapped: \(trap)"
        case .outOfMemory(let trap): "out of memory (\(trap))"
        case .cpuBudgetExceeded: "exceeded its CPU budget"
        case .forcedOff: "forced off after the grace period"
        case .failedToStart(let reason): "failed to start: \(reason)"
        }
    }
}

/// What every app's container shares: where app files live, the board, the network, the
/// device's tenant, the runtime's log.
public struct AppEnvironment: Sendable {
    /// `<dir>/<component>/storage` (mutable storage) and `<dir>/<component>/app.log` (output).
    public var directory: URL
    public var peripherals: any PeripheralProvider
    public var network: (any AppNetwork)?
    /// The tenant the device belongs to: `DeviceAuthentication` must name it.
    public var tenantID: TenantID?
    public var logger: Logger

    public init(
        directory: URL, peripherals: any PeripheralProvider = SimulatedBoard(), network: (any AppNetwork)? = nil,
        tenantID: TenantID? = nil, logger: Logger = Logger(label: "rampart.apps")
    ) {
        self.directory = directory
        self.peripherals = peripherals
        self.network = network
        self.tenantID = tenantID
        self.logger = logger
    }

    func appDirectory(_ component: ComponentID) -> URL { directory.appendingPathComponent(component.description) }
    public func storageDirectory(_ component: ComponentID, sideloaded: Bool = false) -> URL {
        appDirectory(component).appendingPathComponent(sideloaded ? "storage-sideloaded" : "storage")
    }
    public func logFile(_ component: ComponentID) -> URL { appDirectory(component).appendingPathComponent("app.log") }
}

/// Delivers messages between apps; the supervisor is the one router.
protocol AppMessageRouter: Sendable {
    /// A `rampart.h` status: 0, or `RAMPART_EDENIED`/`RAMPART_ENOTFOUND`/`RAMPART_EBUSY`.
    func send(from sender: AppManifest, to target: ComponentID, data: [UInt8]) -> Int32
}

/// Refuses memory beyond the app's limit and remembers that it did.
final class MemoryLimiter: ResourceLimiter {
    let limitBytes: Int
    let refused = Atomic<Bool>(false)
    init(limitBytes: Int) { self.limitBytes = limitBytes }
    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard desired <= limitBytes else {
            refused.store(true, ordering: .relaxed)
            return false
        }
        return true
    }
    /// Table entries live outside `Limits.MemoryKB`, so all tables together get one budget.
    /// WasmKit asks per table with the size it wants, so every request is counted in full —
    /// growing one table counts its old entries again, which errs on the side of refusing.
    static let tableEntryBudget = 100_000
    private let tableEntries = Atomic<Int>(0)
    func limitTableGrowth(to desired: Int) throws -> Bool {
        let total = tableEntries.add(max(0, desired), ordering: .relaxed).newValue
        return total <= Self.tableEntryBudget
    }
}

/// The CPU budget: fuel is a bucket refilled at `perSecond` while wall time passes and capped
/// at one second's worth; it is topped up at every host call. A loop that never calls the
/// host empties it within a second of CPU and is stopped; an app that waits is not charged.
final class FuelBucket {
    let perSecond: UInt64
    private var lastRefill = ContinuousClock.now

    init(perSecond: UInt64) { self.perSecond = perSecond }

    func refill(_ store: Store) {
        let now = ContinuousClock.now
        let elapsed = lastRefill.duration(to: now)
        lastRefill = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let earned = UInt64(min(Double(perSecond), seconds * Double(perSecond)))
        let remaining = store.fuel?.remaining ?? 0
        store.fuel = Fuel(remaining: min(perSecond, remaining &+ earned))
    }
}

/// Runs one app in its own WebAssembly instance, on the calling thread, until it ends:
/// WASI preview 1 with no environment, no files but its own storage directory, output to its
/// log; memory bounded by `Limits.MemoryKB`; CPU by `Limits.CpuFuelPerSecond`; and the
/// `rampart` host API granting exactly the manifest's capabilities.
enum AppContainer {
    static let defaultFuelPerSecond: UInt64 = 50_000_000

    static func run(
        _ app: AppDefinition, environment: AppEnvironment, control: AppControl, router: any AppMessageRouter
    ) -> AppExit {
        let manifest = app.manifest
        let limiter = MemoryLimiter(limitBytes: manifest.limits.memoryKB * 1024)
        let engine = Engine(configuration: EngineConfiguration(fuelMetering: true))
        let store = Store(engine: engine)
        store.resourceLimiter = limiter
        let bucket = FuelBucket(perSecond: manifest.limits.cpuFuelPerSecond.map { UInt64(max(1, $0)) } ?? defaultFuelPerSecond)
        store.fuel = Fuel(remaining: bucket.perSecond)

        let files: AppFiles
        do {
            files = try AppFiles(app: manifest, sideloaded: app.sideloaded, environment: environment)
        } catch {
            return .failedToStart("its files could not be prepared: \(error)")
        }
        defer { files.close() }

        let exit: AppExit
        do {
            let module = try parseWasm(bytes: Array(app.wasm))
            let argv = [manifest.name]
            exit = try WASIBridgeToHost(
                args: argv, environment: [:], preopens: files.preopens,
                stdin: files.nullInput, stdout: files.log, stderr: files.log,
                wallClock: MillisecondWallClock(), monotonicClock: MillisecondMonotonicClock()
            ).runAndClose { wasi -> AppExit in
                var imports = Imports()
                // Every call into the runtime: end a forced-off app, charge the CPU budget, and
                // hand over the caller's memory (looked up once; an instance keeps its memory).
                var memory: Memory?
                let prologue: (borrowing Caller) throws -> Memory = { caller in
                    try control.checkAlive()
                    bucket.refill(caller.store)
                    if let memory { return memory }
                    guard case .memory(let exported) = caller.instance?.export("memory") else {
                        throw DeviceError(code: "app_no_memory", message: "the app exports no memory, which WASI and the host API need")
                    }
                    memory = exported
                    return exported
                }
                WASIWrapping.link(
                    wasi, into: &imports, store: store, arguments: argv, storage: files.storage, control: control,
                    logger: environment.logger, app: manifest.name, prologue: prologue)
                HostAPI(manifest: manifest, environment: environment, control: control, router: router)
                    .link(into: &imports, store: store, prologue: prologue)
                let instance: Instance
                do {
                    instance = try module.instantiate(store: store, imports: imports)
                } catch {
                    return limiter.refused.load(ordering: .relaxed)
                        ? .outOfMemory("its initial memory exceeds Limits.MemoryKB = \(manifest.limits.memoryKB)")
                        : .failedToStart("\(error)")
                }
                return .exited(try wasi.start(instance))
            }
        } catch is AppForcedOff {
            exit = .forcedOff
        } catch let trap as Trap {
            let first = String("\(trap)".prefix { $0 != "\n" })
            if control.isForcedOff {
                exit = .forcedOff
            } else if first == "Trap: out of fuel" {
                exit = .cpuBudgetExceeded
            } else if limiter.refused.load(ordering: .relaxed) {
                exit = .outOfMemory(first)
            } else {
                exit = .trapped(first, frames: Self.frames(of: trap))
            }
        } catch {
            exit = .failedToStart("\(error)")
        }
        return exit
    }

    /// The function names of a trap's backtrace, innermost first. WasmKit 0.4 shows the
    /// backtrace only in the trap's description, one `N: (0x…) name` line per frame.
    static func frames(of trap: Trap) -> [String] {
        "\(trap)".split(separator: "\n").dropFirst().compactMap { line in
            guard let close = line.firstIndex(of: ")") else { return nil }
            let name = line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
            return name.isEmpty ? nil : name
        }
    }
}

/// The descriptors an app's WASI instance is given: /dev/null for input, its log (append)
/// for output, its storage directory as `/storage` when the manifest declares one.
struct AppFiles {
    let nullInput: CInt
    let log: CInt
    let storage: StorageQuota?
    var preopens: [WASIBridgeToHost.Preopen] {
        storage.map { [WASIBridgeToHost.Preopen(guestPath: "/storage", hostPath: $0.directory.path)] } ?? []
    }

    /// An app's log keeps its last 1 MiB across one rotation (`app.log.1`).
    static let logRotationBytes = 1 << 20

    init(app manifest: AppManifest, sideloaded: Bool, environment: AppEnvironment) throws {
        let fm = FileManager.default
        let logURL = environment.logFile(manifest.componentId)
        try fm.createDirectory(at: logURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        if let size = (try? fm.attributesOfItem(atPath: logURL.path))?[.size] as? Int, size > Self.logRotationBytes {
            let old = logURL.path + ".1"
            try? fm.removeItem(atPath: old)
            try fm.moveItem(atPath: logURL.path, toPath: old)
        }
        if let sizeKB = manifest.capabilities.mutableStorage?.sizeKB {
            let directory = environment.storageDirectory(manifest.componentId, sideloaded: sideloaded)
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            storage = StorageQuota(directory: directory, limitBytes: sizeKB * 1024)
        } else {
            storage = nil
        }
        nullInput = open("/dev/null", O_RDONLY | O_CLOEXEC)
        log = open(logURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard nullInput >= 0, log >= 0 else {
            if nullInput >= 0 { Foundation.close(nullInput) }
            throw DeviceError(code: "app_files", message: "cannot open \(logURL.path): \(String(cString: strerror(errno)))")
        }
    }

    func close() {
        Foundation.close(nullInput)
        Foundation.close(log)
    }
}

/// Clocks an app reads: the host's, at millisecond resolution, so a guest cannot time the
/// host's work to the nanosecond.
struct MillisecondWallClock: WallClock {
    func now() throws -> WallClock.Duration {
        let ms = UInt64(Date().timeIntervalSince1970 * 1000)
        return (seconds: ms / 1000, nanoseconds: UInt32(ms % 1000) * 1_000_000)
    }
    func resolution() throws -> WallClock.Duration { (seconds: 0, nanoseconds: 1_000_000) }
}

struct MillisecondMonotonicClock: MonotonicClock {
    private static let origin = ContinuousClock.now

    func now() throws -> MonotonicClock.Instant {
        let elapsed = Self.origin.duration(to: .now)
        let ms = UInt64(elapsed.components.seconds) * 1000 + UInt64(elapsed.components.attoseconds / 1_000_000_000_000_000)
        return ms * 1_000_000
    }
    func resolution() throws -> MonotonicClock.Duration { 1_000_000 }
}
