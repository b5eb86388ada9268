import Foundation
import RampartDevice
import RampartImage
import RampartModel
import RampartTestSupport
import Testing

/// One app's failure is that app's alone: a trap, a runaway loop and a memory hog run beside
/// a healthy app, which keeps running; the failing ones are restarted with backoff until the
/// supervisor calls it a crash loop.
@Suite struct AppIsolationTests {
    /// Toggles GPIO 4 every 20 ms until a terminate event, then exits 0.
    static func healthy() throws -> Data {
        try TestApp.module(
            body: """
                (local $level i32) (local $kind i32)
                (loop $tick
                  (drop (call $gpio_set (i32.const 4) (local.get $level)))
                  (local.set $level (i32.xor (local.get $level) (i32.const 1)))
                  (local.set $kind (call $event_wait (i32.const 20) (i32.const 0) (i32.const 0) (i32.const 64)))
                  (br_if $tick (i32.ne (local.get $kind) (i32.const 1))))
                """)
    }

    static let trapping = "(unreachable)"
    static let runaway = "(loop $spin (br $spin))"
    /// Grows memory a page at a time until refused, then traps as a C app's abort would.
    static let hog = "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) (unreachable)"

    @Test func failuresStayInTheirContainer() async throws {
        let bench = try AppBench()
        let healthy = try TestApp.manifest(name: "healthy", capabilities: #"{"Gpio": [4]}"#)
        try bench.supervisor.start(AppDefinition(manifest: healthy, wasm: try Self.healthy()))

        let trapper = try TestApp.manifest(name: "trapper")
        let spinner = try TestApp.manifest(name: "spinner", fuelPerSecond: 5_000_000)
        let hog = try TestApp.manifest(name: "hog", memoryKB: 512)
        try bench.supervisor.start(AppDefinition(manifest: trapper, wasm: try TestApp.module(body: Self.trapping)))
        try bench.supervisor.start(AppDefinition(manifest: spinner, wasm: try TestApp.module(body: Self.runaway)))
        try bench.supervisor.start(AppDefinition(manifest: hog, wasm: try TestApp.module(body: Self.hog)))

        // Three failures each (restarted after 0.3, 0.6 s) make a crash loop.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, [trapper, spinner, hog].contains(where: { bench.supervisor.state(of: $0.componentId) != .crashLoop }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let status = Dictionary(uniqueKeysWithValues: bench.supervisor.status().map { ($0.name, $0) })
        #expect(status["trapper"]?.state == .crashLoop)
        #expect(status["trapper"]?.lastExit?.hasPrefix("trapped: Trap: unreachable") == true, "\(status["trapper"]?.lastExit ?? "")")
        #expect(status["spinner"]?.state == .crashLoop)
        #expect(status["spinner"]?.lastExit == AppExit.cpuBudgetExceeded.description)
        #expect(status["hog"]?.state == .crashLoop)
        #expect(status["hog"]?.lastExit?.hasPrefix("out of memory") == true, "\(status["hog"]?.lastExit ?? "")")
        #expect(status["trapper"]?.restarts == 2)

        // The healthy app ran throughout and still does.
        let before = bench.board.gpioChanges
        #expect(await eventually { bench.board.gpioChanges > before })
        #expect(bench.supervisor.state(of: healthy.componentId) == .running)
        #expect(await bench.supervisor.stop(healthy.componentId) == .exited(0))
        await bench.cleanUp()
    }

    /// A stop grace of 20 s: for apps that should return by themselves, measured on a
    /// machine that may be busy with every other test.
    static var patientPolicy: AppSupervisor.RestartPolicy {
        var policy = AppSupervisor.RestartPolicy()
        policy.stopGrace = 20
        return policy
    }

    /// Stopping sends a terminate event; an app that ignores it is forced off after the
    /// 2-second grace, whether it waits in a host call or spins.
    @Test func stoppingDeliversTerminateThenForces() async throws {
        let bench = try AppBench()
        // The polite app has a grace far longer than it needs, so a machine busy with other
        // tests cannot turn its own exit into a forced one.
        let patient = try AppBench(policy: Self.patientPolicy)
        let polite = try TestApp.manifest(name: "polite", capabilities: #"{"Gpio": [4]}"#)
        try patient.supervisor.start(AppDefinition(manifest: polite, wasm: try Self.healthy()))
        let deaf = try TestApp.manifest(name: "deaf")
        try bench.supervisor.start(AppDefinition(
            manifest: deaf,
            wasm: try TestApp.module(body: "(loop $ignore (drop (call $event_wait (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 64))) (br $ignore))")))
        let spinner = try TestApp.manifest(name: "spinner", fuelPerSecond: 2_000_000_000)
        try bench.supervisor.start(AppDefinition(manifest: spinner, wasm: try TestApp.module(body: "(loop $spin (drop (call $event_wait (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64))) (br $spin))")))
        try await Task.sleep(for: .milliseconds(200))

        let started = ContinuousClock.now
        #expect(await patient.supervisor.stop(polite.componentId) == .exited(0), "returned by itself, not forced off")
        #expect(started.duration(to: .now) < .seconds(Self.patientPolicy.stopGrace))
        await patient.cleanUp()

        let forced = ContinuousClock.now
        #expect(await bench.supervisor.stop(deaf.componentId) == .forcedOff)
        let took = forced.duration(to: .now)
        #expect(took >= .seconds(2) && took < .seconds(10), "\(took)")
        #expect(await bench.supervisor.stop(spinner.componentId) == .forcedOff)
        #expect(bench.supervisor.status().allSatisfy { $0.state == .stopped })
        await bench.cleanUp()
    }

    /// Pointers outside the app's memory are refused (host API: RAMPART_EINVAL; WASI: EFAULT)
    /// and never crash the runtime.
    @Test func badPointersAreRefused() async throws {
        let bench = try AppBench()
        let manifest = try TestApp.manifest(capabilities: #"{"Uart": ["UART0"]}"#)
        let hostCall = try TestApp.exitWith("(call $uart_write (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 2))")
        #expect(try await bench.run(manifest, hostCall) == .exited(98))
        // fd_write to stdout with an iovec naming bytes far beyond the one page of memory.
        let wasi = try TestApp.exitWith(
            "(call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))",
            data: [(0, "\\00\\00\\ff\\00\\10\\00\\00\\00")])
        #expect(try await bench.run(manifest, wasi) == .exited(100 + 21))
        #expect(bench.board.uartTransmitted("UART0").isEmpty)
        await bench.cleanUp()
    }

    /// An app over its memory limit at instantiation never runs.
    @Test func initialMemoryOverTheLimitIsRefused() async throws {
        let bench = try AppBench()
        let manifest = try TestApp.manifest(memoryKB: 128)
        let exit = try await bench.run(manifest, try TestApp.module(body: "", memoryPages: 4))
        #expect(exit == .outOfMemory("its initial memory exceeds Limits.MemoryKB = 128"))
        await bench.cleanUp()
    }

    /// An app with `SoftwareUpdateDeferral` hears of a pending update and defers it; one
    /// without is not asked. System events reach subscribers.
    @Test func updateDeferralAndSystemEvents() async throws {
        let bench = try AppBench()
        // Waits for events; on 2 (update pending) defers by 90 minutes; then returns (status 0).
        let deferring = try TestApp.module(body: """
            (local $kind i32)
            (drop (call $system_events_subscribe))
            (local.set $kind (call $event_wait (i32.const 5000) (i32.const 256) (i32.const 128) (i32.const 64)))
            (if (i32.eq (local.get $kind) (i32.const 3))
              (then (local.set $kind (call $event_wait (i32.const 5000) (i32.const 256) (i32.const 128) (i32.const 64)))))
            (if (i32.eq (local.get $kind) (i32.const 2)) (then (drop (call $update_defer (i32.const 90)))))
            """)
        let manifest = try TestApp.manifest(
            name: "deferrer", capabilities: #"{"SoftwareUpdateDeferral": true, "SystemEventNotifications": true}"#)
        try bench.supervisor.start(AppDefinition(manifest: manifest, wasm: deferring))
        let installsAt = Date().addingTimeInterval(60)
        // The window is generous for a loaded machine; the announcement ends as soon as the app defers.
        let deferredUntil = try #require(await bench.supervisor.announceUpdate(installsAt: installsAt, answerWithin: 30))
        // 90 minutes from when the app deferred, which a loaded machine may have taken a while to reach.
        #expect(abs(deferredUntil.timeIntervalSinceNow - 90 * 60) < 60)
        await bench.supervisor.stop(manifest.componentId)

        // Without the capability the app is not asked, and nothing is deferred.
        let plain = try TestApp.manifest(name: "plain", capabilities: #"{"SystemEventNotifications": true}"#)
        try bench.supervisor.start(AppDefinition(manifest: plain, wasm: deferring))
        try await Task.sleep(for: .milliseconds(200))
        #expect(await bench.supervisor.announceUpdate(installsAt: installsAt, answerWithin: 0.5) == nil)
        await bench.cleanUp()
    }

    /// Ways to abuse WASI the review found: a read whose first buffer overlaps its own iovec
    /// array, one call moving more than 16 MiB, opening files without end. Each is refused.
    @Test func wasiAbuseIsRefused() async throws {
        let bench = try AppBench()
        let manifest = try TestApp.manifest(capabilities: #"{"MutableStorage": {"SizeKB": 64}}"#, memoryKB: 8192)
        // fd_read(0, iovs = 0, 2, &n): iovec 0's buffer (0, 16 bytes) covers the iovec array itself.
        let overlapping = try TestApp.module(
            data: [(0, "\\00\\00\\00\\00\\10\\00\\00\\00\\40\\00\\00\\00\\04\\00\\00\\00")],
            body: """
                (call $exit (i32.add (i32.const 100)
                  (call $fd_read (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 128))))
                """,
            imports: #"(import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))"#)
        #expect(try await bench.run(manifest, overlapping) == .exited(100 + 21))
        // fd_write(1, …) of five 4 MiB buffers: 20 MiB in one call.
        var iovecs = ""
        for _ in 0..<5 { iovecs += "\\00\\00\\01\\00\\00\\00\\40\\00" }
        let huge = try TestApp.module(
            data: [(0, iovecs)],
            body: "(call $exit (i32.add (i32.const 100) (call $fd_write (i32.const 1) (i32.const 0) (i32.const 5) (i32.const 64))))",
            memoryPages: 70)
        #expect(try await bench.run(manifest, huge) == .exited(100 + 21))
        // path_open in a loop on new names until it fails: the 65th open is EMFILE (33).
        let opener = try TestApp.module(
            data: [(0, "f0")],
            body: """
                (local $i i32) (local $errno i32)
                (loop $open
                  (i32.store8 (i32.const 1) (i32.add (i32.const 48) (local.get $i)))
                  (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 1)
                    (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64)))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $open (i32.and (i32.eqz (local.get $errno)) (i32.lt_u (local.get $i) (i32.const 75)))))
                (call $exit (i32.add (i32.const 100) (local.get $errno)))
                """)
        #expect(try await bench.run(manifest, opener) == .exited(100 + 33))
        await bench.cleanUp()
    }

    /// An app sleeping in `poll_oneoff` (C's sleep) wakes when it is asked to stop, sees its
    /// terminate event and returns — it is not forced off.
    @Test func aSleeperWakesForItsTerminateEvent() async throws {
        let bench = try AppBench(policy: Self.patientPolicy)
        // poll_oneoff with one relative clock subscription of an hour; then event_wait(0): exit 0 on terminate.
        let sleeper = try TestApp.module(
            body: """
                (i64.store (i32.const 24) (i64.const 3600000000000))
                (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
                (if (i32.ne (call $event_wait (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 132)) (i32.const 1))
                  (then (unreachable)))
                """,
            imports: #"(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))"#)
        let manifest = try TestApp.manifest(name: "sleeper")
        try bench.supervisor.start(AppDefinition(manifest: manifest, wasm: sleeper))
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        // Woke and returned (0) by itself, long before its hour; it would be forced off at the grace.
        #expect(await bench.supervisor.stop(manifest.componentId) == .exited(0))
        #expect(started.duration(to: .now) < .seconds(Self.patientPolicy.stopGrace))
        await bench.cleanUp()
    }

    /// Validation before an install compiles and links but runs nothing of the app: a start
    /// section that never ends does not hang it.
    @Test func validationRunsNoStartSection() throws {
        let wasm = try TestApp.module(body: "", extra: "(func $spin (loop $forever (br $forever))) (start $spin)")
        try AppHost.validate(wasm)
    }

    @Test func manifestLimitsAreBounded() throws {
        #expect(throws: ImagePackageError.self) { try TestApp.manifest(fuelPerSecond: Int.max) }
        #expect(throws: ImagePackageError.self) { try TestApp.manifest(capabilities: #"{"MutableStorage": {"SizeKB": -1}}"#) }
        #expect(throws: ImagePackageError.self) { try TestApp.manifest(capabilities: #"{"MutableStorage": {"SizeKB": 9007199254740991}}"#) }
    }
}
