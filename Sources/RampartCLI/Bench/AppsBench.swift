import ArgumentParser
import Foundation
import Logging
import RampartDevice
import RampartImage
import RampartModel
import WAT

/// The app container's costs: cold start, a host call beside a plain wasm call, and the
/// memory each idle app holds.
struct AppsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "App cold start, host-call overhead and memory per app in the device runtime.",
        discussion: """
            Cold start: from AppSupervisor.start to the app's first host call (a thread, a store, \
            parsing, linking WASI and the host API, instantiating), for a minimal module and for a \
            module of the size a C app built with wasi-libc has. Host call: a loop of \
            rampart.gpio_get against the same loop calling a wasm function that does the same \
            arithmetic, per call. Memory: the process's resident set before and after starting \
            --apps idle apps (each waiting for an event), per app.
            """)

    @Option(help: "Cold starts to time.") var starts = 30
    @Option(help: "Calls in each host-call loop.") var calls = 1_000_000
    @Option(help: "Idle apps for the memory figure.") var apps = 50
    @Flag(help: "Print JSON.") var json = false

    struct Figures: Codable {
        var coldStartMedianMs: Double
        var coldStartP95Ms: Double
        var coldStartLargeMedianMs: Double
        var largeModuleBytes: Int
        var hostCallNs: Double
        var wasmCallNs: Double
        var hostCallOverheadNs: Double
        var residentBeforeKiB: Int
        var residentPerAppKiB: Double
        var apps: Int
    }

    /// `_start` calls gpio_set once (the start signal) and returns; `filler` adds functions.
    static func starter(filler: Int = 0) throws -> Data {
        let functions = (0..<filler).map { index in
            "(func $f\(index) (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const \(index + 3))) (i32.const \(index))))"
        }.joined(separator: "\n")
        return Data(try wat2wasm("""
            (module
              (import "rampart" "gpio_set" (func $gpio_set (param i32 i32) (result i32)))
              (memory (export "memory") 2)
              \(functions)
              (func (export "_start") (drop (call $gpio_set (i32.const 1) (i32.const 1)))))
            """))
    }

    /// Calls `gpio_get` (host) or `$local` (wasm) `count` times, then returns.
    static func looper(host: Bool, count: Int) throws -> Data {
        Data(try wat2wasm("""
            (module
              (import "rampart" "gpio_get" (func $gpio_get (param i32) (result i32)))
              (memory (export "memory") 1)
              (func $local (param i32) (result i32) (i32.and (local.get 0) (i32.const 1)))
              (func (export "_start") (local $i i32) (local $sum i32)
                (loop $again
                  (local.set $sum (i32.add (local.get $sum) (call \(host ? "$gpio_get" : "$local") (i32.const 1))))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $again (i32.lt_u (local.get $i) (i32.const \(count)))))))
            """))
    }

    static let idle = """
        (module
          (import "rampart" "event_wait" (func $wait (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (loop $events (br_if $events (i32.ne (call $wait (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 64)) (i32.const 1))))))
        """

    func manifest(_ name: String, memoryKB: Int = 256) throws -> AppManifest {
        try AppManifest(json: Data("""
            {"SchemaVersion": 1, "Name": "\(name)", "ComponentId": "\(ComponentID.random())", "EntryPoint": "a.wasm",
             "Capabilities": {"Gpio": [1]}, "Limits": {"MemoryKB": \(memoryKB), "CpuFuelPerSecond": 2000000000}}
            """.utf8))
    }

    func run() async throws {
        guard starts > 0, calls > 0, apps > 0 else { throw ValidationError("--starts, --calls and --apps must be positive") }
        let directory = try makeTemporaryDirectory(prefix: "rampart-bench-apps")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "rampart-bench")
        logger.logLevel = .critical
        let board = SimulatedBoard()
        let supervisor = AppSupervisor(
            environment: AppEnvironment(directory: URL(fileURLWithPath: directory), peripherals: board, logger: logger))
        let clock = ContinuousClock()

        func coldStarts(_ wasm: Data) async throws -> [Double] {
            var times: [Double] = []
            for index in 0..<starts {
                let app = AppDefinition(manifest: try manifest("start\(index)"), wasm: wasm)
                let before = board.gpioChanges
                let started = clock.now
                try supervisor.start(app)
                while board.gpioChanges == before { await Task.yield() }
                times.append((clock.now - started).seconds * 1000)
                _ = await supervisor.nextExit(of: app.manifest.componentId, within: 5)
                await supervisor.remove(app.manifest.componentId)
                board.setInput(pin: 1, high: false)
            }
            return times.sorted()
        }
        let small = try await coldStarts(try Self.starter())
        let largeModule = try Self.starter(filler: 2000)
        let large = try await coldStarts(largeModule)

        func loop(host: Bool) async throws -> Double {
            let app = AppDefinition(manifest: try manifest(host ? "host-calls" : "wasm-calls"), wasm: try Self.looper(host: host, count: calls))
            let started = clock.now
            try supervisor.start(app)
            let exit = await supervisor.nextExit(of: app.manifest.componentId, within: 600)
            let elapsed = (clock.now - started).seconds
            guard exit == .exited(0) else { throw ValidationError("the call loop ended badly: \(String(describing: exit))") }
            await supervisor.remove(app.manifest.componentId)
            return elapsed / Double(calls) * 1e9
        }
        let wasmCall = try await loop(host: false)
        let hostCall = try await loop(host: true)

        let before = Self.residentKiB()
        let idle = Data(try wat2wasm(Self.idle))
        var components: [ComponentID] = []
        for index in 0..<apps {
            let app = AppDefinition(manifest: try manifest("idle\(index)", memoryKB: 64), wasm: idle)
            try supervisor.start(app)
            components.append(app.manifest.componentId)
        }
        try await Task.sleep(for: .milliseconds(500))
        let after = Self.residentKiB()
        await supervisor.stopAll()

        func median(_ values: [Double]) -> Double { values[values.count / 2] }
        let figures = Figures(
            coldStartMedianMs: median(small), coldStartP95Ms: small[min(small.count - 1, Int(Double(small.count) * 0.95))],
            coldStartLargeMedianMs: median(large), largeModuleBytes: largeModule.count,
            hostCallNs: hostCall, wasmCallNs: wasmCall, hostCallOverheadNs: hostCall - wasmCall,
            residentBeforeKiB: before, residentPerAppKiB: Double(after - before) / Double(apps), apps: apps)
        if json {
            try printJSON(figures)
        } else {
            print(String(format: "cold start, minimal module:             median %7.2f ms, p95 %7.2f ms (%d starts)", figures.coldStartMedianMs, figures.coldStartP95Ms, starts))
            print(String(format: "cold start, %6d-byte module:         median %7.2f ms", figures.largeModuleBytes, figures.coldStartLargeMedianMs))
            print(String(format: "host call (rampart.gpio_get):           %7.0f ns; a wasm call doing the same: %5.0f ns; overhead %7.0f ns", hostCall, wasmCall, hostCall - wasmCall))
            print(String(format: "memory: %d KiB resident before, %.0f KiB per idle app (%d apps)", before, figures.residentPerAppKiB, apps))
        }
    }

    /// VmRSS from /proc/self/status.
    static func residentKiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
}
