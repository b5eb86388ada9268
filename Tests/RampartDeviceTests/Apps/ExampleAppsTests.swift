import Foundation
import RampartDevice
import RampartImage
import RampartModel
import RampartTestSupport
import Testing

/// The C examples, built with clang and wasi-libc against SDK/rampart.h, run in the
/// container as the manifest in Examples/ grants them.
@Suite struct ExampleAppsTests {
    func definition(_ app: String) async throws -> AppDefinition {
        AppDefinition(manifest: try AppManifest(json: try await ExampleApps.manifest(app)), wasm: try await ExampleApps.wasm(app))
    }

    func log(_ bench: AppBench, _ app: AppDefinition) throws -> String {
        try String(contentsOf: bench.supervisor.environment.logFile(app.manifest.componentId), encoding: .utf8)
    }

    @Test func blinkTogglesItsPinUntilStopped() async throws {
        let bench = try AppBench()
        let blink = try await definition("blink")
        try WasmPayloadCheck.check(blink.wasm, manifest: blink.manifest)
        try bench.supervisor.start(blink)
        #expect(await eventually { bench.board.gpioChanges >= 2 })
        #expect(await bench.supervisor.stop(blink.manifest.componentId) == .exited(0))
        #expect(try log(bench, blink).contains("blink: stopping after"))
        await bench.cleanUp()
    }

    /// The storage app keeps its count across starts, and the quota (16 KiB) stops its fill.
    @Test func storageKeepsFilesWithinItsQuota() async throws {
        let bench = try AppBench()
        let storage = try await definition("storage")
        #expect(try await bench.run(storage.manifest, storage.wasm) == .exited(0))
        #expect(try await bench.run(storage.manifest, storage.wasm) == .exited(0))
        let output = try log(bench, storage)
        #expect(output.contains("storage: start 1;") && output.contains("storage: start 2;"), "\(output)")
        let filled = output.split(separator: "\n").compactMap { line in
            line.split(separator: " ").firstIndex(of: "after").map { Int(line.split(separator: " ")[$0 + 1])! }
        }
        #expect(filled.count == 2 && filled.allSatisfy { $0 > 8 * 1024 && $0 <= 16 * 1024 }, "\(filled)")
        #expect(output.contains("No space left on device"), "\(output)")
        let used = try FileManager.default.contentsOfDirectory(
            at: bench.supervisor.environment.storageDirectory(storage.manifest.componentId), includingPropertiesForKeys: nil)
        #expect(used.map(\.lastPathComponent) == ["starts"])

        // The same component sideloaded does not see the deployed app's files: it starts at 1.
        var sideloaded = storage
        sideloaded.sideloaded = true
        try bench.supervisor.start(sideloaded)
        #expect(await bench.supervisor.nextExit(of: storage.manifest.componentId, within: 10) == .exited(0)
            || bench.supervisor.state(of: storage.manifest.componentId) == .exited)
        let starts = { (dev: Bool) in
            try String(contentsOf: bench.supervisor.environment.storageDirectory(storage.manifest.componentId, sideloaded: dev)
                .appendingPathComponent("starts"), encoding: .utf8)
        }
        #expect(try starts(false) == "2\n" && starts(true) == "1\n")
        await bench.cleanUp()
    }

    /// The crasher fails on command — trap, runaway loop, memory hog, bad exit — and each is
    /// told apart; the supervisor restarts it each time.
    @Test(arguments: [("trap", "trapped: Trap: unreachable"), ("spin", "exceeded its CPU budget"),
                      ("oom", "out of memory"), ("exit", "exited with status 3")])
    func crasherFailsAsCommanded(command: String, expected: String) async throws {
        let bench = try AppBench()
        var crasher = try await definition("crasher")
        // A smaller budget than the example's, so the runaway loop ends quickly in a debug build.
        crasher.manifest.limits.cpuFuelPerSecond = 5_000_000
        try bench.supervisor.start(crasher)
        #expect(await eventually { bench.board.uartTransmitted("UART0") == Array("crasher: ready\n".utf8) })
        bench.board.uartReceive("UART0", Array(command.utf8))
        let exit = await bench.supervisor.nextExit(of: crasher.manifest.componentId, within: 15)
        #expect(exit?.description.hasPrefix(expected) == true, "\(String(describing: exit))")
        // Restarted after the backoff: it says it is ready again.
        #expect(await eventually { bench.supervisor.status().first?.restarts == 1 })
        #expect(await eventually { bench.supervisor.state(of: crasher.manifest.componentId) == .running })
        await bench.cleanUp()
    }
}
