public import Foundation
public import RampartModel
import RampartImage
import Synchronization

/// The device's bounded, persistent queue of failure reports (`<state>/reports/`).
///
/// Each report is its own file, written durably before ``add(_:)`` returns, so reports
/// survive a restart or a power loss. An event identical to a queued one (same
/// ``FailureSignature`` inputs) within ``aggregationWindow`` only raises that report's
/// count. When the queue holds ``capacity`` reports the oldest is dropped, and the number
/// dropped is itself reported (`reports-dropped`, with a stable report ID until uploaded).
public final class ReportQueue: Sendable {
    public let directory: String
    public let capacity: Int
    public let aggregationWindow: TimeInterval

    private struct Entry {
        var name: String
        var report: FailureReport
        var inputs: String
    }

    private struct Dropped: Codable {
        var reportId: UUID
        var count: Int
        var since: Date
    }

    private let entries: Mutex<[Entry]>

    public init(directory: String, capacity: Int = 1000, aggregationWindow: TimeInterval = 60) {
        self.directory = directory
        self.capacity = max(capacity, 1)
        self.aggregationWindow = aggregationWindow
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var loaded: [Entry] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".report.json") }.sorted()
        for name in names {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)"),
                let report = try? JSONDecoder.rampart.decode(FailureReport.self, from: data)
            else {
                // A file a power loss cut short says nothing: drop it.
                try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
                continue
            }
            loaded.append(Entry(name: name, report: report, inputs: FailureSignature.inputs(report)))
        }
        entries = Mutex(loaded)
    }

    public convenience init(state: DeviceState) {
        self.init(directory: "\(state.directory)/reports")
    }

    private var droppedPath: String { "\(directory)/dropped.json" }

    /// Queues `report` durably, or counts it into an identical one queued within the window.
    public func add(_ report: FailureReport) throws {
        try entries.withLock { entries in
            let inputs = FailureSignature.inputs(report)
            if let index = entries.lastIndex(where: {
                $0.inputs == inputs && report.time.timeIntervalSince($0.report.time) < aggregationWindow
                    && $0.report.deviceId == report.deviceId
            }) {
                entries[index].report.count += report.count
                try write(entries[index])
                return
            }
            let name = String(format: "%020lld-", Int64(report.time.timeIntervalSince1970 * 1_000_000)) + "\(report.reportId).report.json"
            let entry = Entry(name: name, report: report, inputs: inputs)
            try write(entry)
            entries.append(entry)
            entries.sort { $0.name < $1.name }
            var dropped = 0
            while entries.count > capacity {
                let oldest = entries.removeFirst()
                try? FileManager.default.removeItem(atPath: "\(directory)/\(oldest.name)")
                dropped += oldest.report.count
            }
            if dropped > 0 { try recordDropped(dropped, template: report) }
        }
    }

    /// The oldest `limit` reports, the dropped-count report first when some were dropped.
    public func pending(limit: Int = FailureReportBatch.maxReports) -> [FailureReport] {
        entries.withLock { entries in
            var reports: [FailureReport] = []
            if let dropped = self.dropped(), let template = entries.first?.report {
                reports.append(droppedReport(dropped, template: template))
            }
            reports += entries.prefix(max(limit - reports.count, 0)).map(\.report)
            return reports
        }
    }

    public var count: Int { entries.withLock { $0.count } }

    /// Removes reports the service acknowledged.
    public func remove(_ ids: Set<UUID>) {
        entries.withLock { entries in
            for entry in entries where ids.contains(entry.report.reportId) {
                try? FileManager.default.removeItem(atPath: "\(directory)/\(entry.name)")
            }
            entries.removeAll { ids.contains($0.report.reportId) }
            if let dropped = dropped(), ids.contains(dropped.reportId) { try? FileManager.default.removeItem(atPath: droppedPath) }
        }
    }

    private func write(_ entry: Entry) throws {
        try DurableFile.write(try JSONEncoder.rampart.encode(entry.report), to: "\(directory)/\(entry.name)")
    }

    private func dropped() -> Dropped? {
        FileManager.default.contents(atPath: droppedPath).flatMap { try? JSONDecoder.rampart.decode(Dropped.self, from: $0) }
    }

    private func recordDropped(_ count: Int, template: FailureReport) throws {
        var record = dropped() ?? Dropped(reportId: UUID(), count: 0, since: template.time)
        record.count += count
        try DurableFile.write(try JSONEncoder.rampart.encode(record), to: droppedPath)
    }

    private func droppedReport(_ dropped: Dropped, template: FailureReport) -> FailureReport {
        FailureReport(
            reportId: dropped.reportId, deviceId: template.deviceId, time: dropped.since, eventType: .unplanned, eventClass: .os,
            category: .reportsDropped, systemSoftwareVersion: template.systemSoftwareVersion,
            details: "the report queue was full (\(capacity) reports): \(dropped.count) oldest dropped", count: dropped.count)
    }
}

/// Turns what the runtime sees into reports: app ends, update failures, refusals.
public struct FailureReporter: Sendable {
    public let queue: ReportQueue
    public let deviceId: DeviceID
    public let systemSoftwareVersion: String
    public var now: @Sendable () -> Date = { Date() }

    public init(queue: ReportQueue, deviceId: DeviceID, systemSoftwareVersion: String) {
        self.queue = queue
        self.deviceId = deviceId
        self.systemSoftwareVersion = systemSoftwareVersion
    }

    public func report(
        _ category: FailureReport.Category, eventClass: FailureReport.EventClass, type: FailureReport.EventType = .unplanned,
        component: ComponentID? = nil, image: ImageID? = nil, frames: [String] = [], details: String
    ) {
        let report = FailureReport(
            deviceId: deviceId, time: now(), eventType: type, eventClass: eventClass, category: category, componentId: component,
            imageId: image, systemSoftwareVersion: systemSoftwareVersion,
            frames: Array(frames.prefix(FailureReport.maxFrames).map { String($0.prefix(FailureReport.maxFrameLength)) }),
            details: String(details.prefix(FailureReport.maxDetailsLength)))
        try? queue.add(report)
    }

    /// An update rolled back: one report for the new images (`os` when system software was among them).
    public func rolledBack(_ attempted: [InstalledImage], reason: String, detail: String) {
        let system = attempted.first { $0.kind == .systemSoftware }
        let app = attempted.first { $0.kind == .app }
        report(
            .updateRolledBack, eventClass: system == nil ? .application : .os, component: system == nil ? app?.componentId : nil,
            image: (system ?? app)?.imageId, details: "\(reason): \(detail)")
    }

    /// A failed end of an app's run (nothing for a clean exit or a stop).
    public func appEnded(_ definition: AppDefinition, _ exit: AppExit, crashLoop: Bool) {
        guard exit.isFailure else { return }
        let component = definition.manifest.componentId, image = definition.imageID
        switch exit {
        case .trapped(let message, let frames):
            report(.crash, eventClass: .application, component: component, image: image, frames: frames, details: message)
        case .exited(let status):
            report(.exit, eventClass: .application, component: component, image: image, details: "exited with status \(status)")
        case .outOfMemory(let message):
            report(.oom, eventClass: .application, component: component, image: image, details: message)
        case .cpuBudgetExceeded:
            report(.watchdog, eventClass: .application, component: component, image: image, details: "exceeded its CPU budget")
        case .failedToStart(let reason):
            report(.crash, eventClass: .application, component: component, image: image, details: "failed to start: \(reason)")
        case .forcedOff:
            break
        }
        if crashLoop {
            report(.crashLoop, eventClass: .application, component: component, image: image,
                   details: "\(definition.manifest.name) failed 5 times within 10 minutes; left down")
        }
    }
}

/// How queued reports reach the service (the device's mutual-TLS route).
public protocol ReportTransport: Sendable {
    func upload(_ batch: FailureReportBatch) async throws -> FailureReportReceipt
}

extension ReportQueue {
    /// Uploads everything queued, a batch at a time, removing each batch once the service
    /// acknowledged it (stored now or already); returns how many went. A failure leaves the
    /// rest queued for the next attempt — a retransmission is counted once by the service.
    @discardableResult
    public func upload(via transport: any ReportTransport) async throws -> Int {
        var sent = 0
        while true {
            let batch = pending()
            if batch.isEmpty { return sent }
            _ = try await transport.upload(FailureReportBatch(reports: batch))
            remove(Set(batch.map(\.reportId)))
            sent += batch.count
        }
    }
}
