import Foundation
import RampartDevice
import RampartImage
import RampartModel
import RampartTestSupport
import Testing

/// The device's failure-report queue: durable, aggregating, bounded, and honest about what
/// it dropped; and what app failures become.
@Suite struct ReportQueueTests {
    let device = DeviceID(String(repeating: "07", count: 32))!

    func report(_ category: FailureReport.Category = .crash, at time: Date = Date(), details: String = "Trap: unreachable",
                frames: [String] = ["boom", "main"]) -> FailureReport {
        FailureReport(
            deviceId: device, time: time, eventType: .unplanned, eventClass: .application, category: category,
            componentId: ComponentID(uuid: UUID(uuidString: "6f1d2a0e-0000-4000-8000-000000000001")!), systemSoftwareVersion: "0.1.0",
            frames: frames, details: details)
    }

    @Test func reportsSurviveAReopenAndIdenticalOnesAggregate() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = Date()
        do {
            let queue = ReportQueue(directory: directory)
            try queue.add(report(at: start))
            try queue.add(report(at: start.addingTimeInterval(10)))  // the same crash: counted into the first
            try queue.add(report(at: start.addingTimeInterval(90)))  // a minute later: a report of its own
            try queue.add(report(.exit, at: start.addingTimeInterval(11), details: "exited with status 3", frames: []))
            #expect(queue.count == 3)
        }
        // A new queue on the same directory — the runtime after a restart — has them all.
        let reopened = ReportQueue(directory: directory)
        let pending = reopened.pending()
        #expect(pending.map(\.count) == [2, 1, 1])
        #expect(pending.map(\.category) == [.crash, .exit, .crash])
        // A file a power loss cut short is dropped, not fatal.
        try Data("{\"reportId\":".utf8).write(to: URL(fileURLWithPath: "\(directory)/00000000000000000000-x.report.json"))
        #expect(ReportQueue(directory: directory).count == 3)
        reopened.remove(Set(pending.prefix(2).map(\.reportId)))
        #expect(ReportQueue(directory: directory).pending().map(\.reportId) == [pending[2].reportId])
    }

    @Test func aFullQueueDropsTheOldestAndSaysHowMany() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = ReportQueue(directory: directory, capacity: 5)
        let start = Date()
        var added: [FailureReport] = []
        for index in 0..<8 {
            let next = report(at: start.addingTimeInterval(Double(index) * 120), details: "Trap: \(index)")
            added.append(next)
            try queue.add(next)
        }
        let pending = ReportQueue(directory: directory, capacity: 5).pending()
        #expect(pending.count == 6)
        #expect(pending.first?.category == .reportsDropped && pending.first?.count == 3, "\(pending.first!)")
        #expect(pending.first?.details.contains("3 oldest dropped") == true)
        #expect(Array(pending.dropFirst().map(\.reportId)) == added.suffix(5).map(\.reportId))
        // The dropped-count report keeps its ID until it is acknowledged (an idempotent retransmission).
        #expect(queue.pending().first?.reportId == pending.first?.reportId)
        queue.remove([pending[0].reportId])
        #expect(queue.pending().first?.category == .crash)
    }

    @Test func aTrappingAppBecomesACrashReportWithItsBacktrace() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reporter = FailureReporter(queue: ReportQueue(directory: directory), deviceId: device, systemSoftwareVersion: "0.1.0")
        let bench = try AppBench { definition, exit, crashLoop in reporter.appEnded(definition, exit, crashLoop: crashLoop) }
        var crasher = AppDefinition(
            manifest: try AppManifest(json: try await ExampleApps.manifest("crasher")), wasm: try await ExampleApps.wasm("crasher"),
            imageID: ImageID(uuid: UUID()))
        crasher.manifest.limits.cpuFuelPerSecond = 5_000_000
        try bench.supervisor.start(crasher)
        try await Task.sleep(for: .milliseconds(300))
        bench.board.uartReceive("UART0", Array("trap".utf8))
        _ = await bench.supervisor.nextExit(of: crasher.manifest.componentId, within: 15)
        // The supervisor tells its exit hook right after the exit becomes visible.
        for _ in 0..<100 where reporter.queue.count == 0 { try await Task.sleep(for: .milliseconds(50)) }
        let crash = try #require(reporter.queue.pending().first)
        #expect(crash.category == .crash && crash.eventClass == .application && crash.eventType == .unplanned)
        #expect(crash.componentId == crasher.manifest.componentId && crash.imageId == crasher.imageID)
        #expect(crash.details == "Trap: unreachable")
        // clang keeps the name section: the innermost frame is the C function that trapped.
        #expect(crash.frames.first == "main" || crash.frames.first == "__original_main", "\(crash.frames)")
        #expect(crash.frames.count >= 2, "\(crash.frames)")
        // A clean stop is no failure.
        await bench.cleanUp()
        #expect(reporter.queue.count == 1)
    }

    @Test func theSignatureIgnoresAddressesAndCloneSuffixes() {
        let a = report(details: "Trap: memory out of bounds at 0x1f00", frames: ["read_sensor.llvm.123", "main", "_start", "x"])
        let b = report(details: "Trap: memory out of bounds at 0x2a00", frames: ["read_sensor", "main", "_start", "y"])
        #expect(FailureSignature.inputs(a) == FailureSignature.inputs(b))
        let c = report(details: "Trap: memory out of bounds at 0x2a00", frames: ["parse", "main", "_start"])
        #expect(FailureSignature.inputs(a) != FailureSignature.inputs(c))
        #expect(FailureSignature.reason("Trap: memory out of bounds at 0x1f00") == "Trap: memory out of bounds at 0x?")
    }
}
