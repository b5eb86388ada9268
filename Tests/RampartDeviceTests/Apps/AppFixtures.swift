import Foundation
import Logging
import RampartDevice
import RampartImage
import RampartModel
import RampartTestSupport
import WAT

/// Apps written in WebAssembly text for the container tests: small enough to read, exact
/// about which host call they make.
enum TestApp {
    /// Each host function's parameter count (all i32, returning i32), as rampart.h declares.
    static let arity: [String: Int] = [
        "event_wait": 4, "system_events_subscribe": 0, "update_defer": 1, "gpio_set": 2, "gpio_get": 1,
        "uart_write": 4, "uart_read": 4, "i2c_transfer": 7, "spi_transfer": 5, "adc_read": 1, "pwm_set": 3,
        "https_request": 10, "app_send": 4,
    ]

    /// A module importing `proc_exit`, `fd_write`, `path_open` and every host function, with
    /// one page of memory holding `data` at offset 0 and `_start` running `body`.
    static func module(
        data: [(Int, String)] = [], body: String, memoryPages: Int = 1, maxPages: Int? = nil, imports more: String = "",
        extra: String = ""
    ) throws -> Data {
        let imports = arity.keys.sorted().map { name in
            let params = String(repeating: " i32", count: arity[name]!)
            return #"(import "rampart" "\#(name)" (func $\#(name) (param\#(params)) (result i32)))"#
        }.joined(separator: "\n")
        let segments = data.map { offset, text in #"(data (i32.const \#(offset)) "\#(text)")"# }.joined(separator: "\n")
        let memory = maxPages.map { "(memory (export \"memory\") \(memoryPages) \($0))" } ?? "(memory (export \"memory\") \(memoryPages))"
        let text = """
            (module
              (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
              \(imports)
              \(more)
              \(memory)
              \(segments)
              \(extra)
              (func (export "_start") \(body)))
            """
        return Data(try wat2wasm(text))
    }

    /// `_start` exits with 100 + the value of `call` (so -1, a denial, is status 99).
    static func exitWith(_ call: String, data: [(Int, String)] = []) throws -> Data {
        try module(data: data, body: "(call $exit (i32.add (i32.const 100) \(call)))")
    }

    static func manifest(
        name: String = "app", component: ComponentID = ComponentID(uuid: UUID()), capabilities: String = "{}",
        memoryKB: Int = 256, fuelPerSecond: Int? = nil
    ) throws -> AppManifest {
        let fuel = fuelPerSecond.map { #", "CpuFuelPerSecond": \#($0)"# } ?? ""
        return try AppManifest(json: Data("""
            {"SchemaVersion": 1, "Name": "\(name)", "ComponentId": "\(component)", "EntryPoint": "app.wasm",
             "Capabilities": \(capabilities), "Limits": {"MemoryKB": \(memoryKB)\(fuel)}}
            """.utf8))
    }
}

/// A supervisor over a fresh directory with a simulated board, restarting quickly.
struct AppBench {
    let directory: URL
    let board = SimulatedBoard()
    let tenant = TenantID(uuid: UUID())
    let supervisor: AppSupervisor

    init(
        network: (any AppNetwork)? = nil, policy: AppSupervisor.RestartPolicy? = nil,
        onExit: (@Sendable (AppDefinition, AppExit, Bool) -> Void)? = nil
    ) throws {
        directory = URL(fileURLWithPath: try temporaryDirectory(prefix: "rampart-apps"))
        var fast = AppSupervisor.RestartPolicy()
        fast.initialBackoff = 0.3
        fast.maximumBackoff = 0.6
        fast.crashLoopFailures = 3
        supervisor = AppSupervisor(
            environment: AppEnvironment(
                directory: directory, peripherals: board, network: network, tenantID: tenant,
                logger: Logger(label: "test.apps")),
            policy: policy ?? fast, onExit: onExit)
    }

    /// Runs one app to its end (at most `timeout` seconds) and returns how it ended; it is
    /// not restarted.
    /// The timeout is for a loaded machine (tests run in parallel on two cores); every app
    /// here exits within a second when it has a core.
    func run(_ manifest: AppManifest, _ wasm: Data, timeout: TimeInterval = 60) async throws -> AppExit? {
        try supervisor.start(AppDefinition(manifest: manifest, wasm: wasm))
        let exit = await supervisor.nextExit(of: manifest.componentId, within: timeout)
        await supervisor.stop(manifest.componentId)
        return exit
    }

    func cleanUp() async {
        await supervisor.stopAll()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The network an app's HTTPS calls reach in the capability matrix: it answers 204 and
/// remembers what it was asked. (The real client, against nginx, is tested in RampartCLITests.)
final class RecordingNetwork: AppNetwork, @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [AppHTTPSRequest] = []
    var requests: [AppHTTPSRequest] { lock.withLock { seen } }

    func send(_ request: AppHTTPSRequest) async throws -> AppHTTPSResponse {
        lock.withLock { seen.append(request) }
        return AppHTTPSResponse(status: 204, body: Array("ok".utf8))
    }
}
