import Crypto
import Foundation
import RampartModel

extension FailureReport {
    /// The bucket this report falls in (``FailureSignature``, version 1).
    var bucketID: String { SHA256.hash(data: Data(FailureSignature.inputs(self).utf8)).hexString }
}

/// Filters of `errors list` and `errors export`.
struct ErrorFilter: Sendable {
    var since: Date?
    var group: DeviceGroupID?
    var image: ImageID?
    var bucket: String?

    /// The WHERE clause after `tenant_id = $1`, and its values from `$2` on.
    func clause() -> (String, [SQLValue]) {
        var conditions: [String] = [], values: [SQLValue] = []
        func add(_ condition: String, _ value: SQLValue) {
            values.append(value)
            conditions.append(condition.replacingOccurrences(of: "?", with: "$\(values.count + 1)"))
        }
        if let since { add("time >= ?", .of(since)) }
        if let group { add("device_group_id = ?", .of(group)) }
        if let image { add("image_id = ?", .of(image)) }
        if let bucket { add("bucket_id = ?", .text(bucket)) }
        return (conditions.map { " AND \($0)" }.joined(), values)
    }
}

extension SQLExecutor {
    /// Stores the report unless one with its ID is stored already; true when stored now.
    func insertFailureReport(_ report: FailureReport, tenant: TenantID, group: DeviceGroupID?, at now: Date) async throws -> Bool {
        let frames = String(decoding: try JSONEncoder.rampart.encode(report.frames), as: UTF8.self)
        let top = String(decoding: try JSONEncoder.rampart.encode(FailureSignature.frames(report)), as: UTF8.self)
        return !(try await query(
            """
            INSERT INTO failure_reports (report_id, tenant_id, device_id, device_group_id, bucket_id, time, received_at, event_type,
                event_class, category, component_id, image_id, system_software_version, frames, details, count, reason, top_frames)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
            ON CONFLICT (report_id) DO NOTHING RETURNING report_id
            """,
            .text(report.reportId.uuidString.lowercased()), .of(tenant), .of(report.deviceId), group.map { .of($0) } ?? .null,
            .text(report.bucketID), .of(report.time), .of(now), .text(report.eventType.rawValue), .text(report.eventClass.rawValue),
            .text(report.category.rawValue), .of(report.componentId?.description), .of(report.imageId?.description),
            .text(report.systemSoftwareVersion), .text(frames), .text(report.details), .int(Int64(report.count)),
            .text(FailureSignature.reason(report.details)), .text(top)
        ).isEmpty)
    }

    /// Buckets with their counts, most events first.
    func errorBuckets(tenant: TenantID, filter: ErrorFilter, limit: Int = 500) async throws -> [ErrorBucket] {
        let (clause, values) = filter.clause()
        let rows = try await query(
            """
            SELECT bucket_id, MIN(event_class) AS event_class, MIN(category) AS category, MIN(component_id) AS component_id,
                MIN(image_id) AS image_id, MIN(reason) AS reason, MIN(top_frames) AS top_frames, SUM(count) AS events,
                COUNT(*) AS reports, COUNT(DISTINCT device_id) AS devices, MIN(time) AS first_seen, MAX(time) AS last_seen
            FROM failure_reports WHERE tenant_id = $1\(clause)
            GROUP BY bucket_id ORDER BY events DESC, bucket_id LIMIT \(limit)
            """, [.of(tenant)] + values)
        var buckets: [ErrorBucket] = []
        for row in rows {
            let image = try row.optionalText("image_id").flatMap { ImageID($0) }
            let affected = Int(try row.int("devices"))
            var rate: Double?
            if let image {
                let running = Int(try await query(
                    "SELECT COUNT(*) AS n FROM device_update_status WHERE tenant_id = $1 AND running_json LIKE $2",
                    .of(tenant), .text("%\"\(image)\"%")).first?.int("n") ?? 0)
                if running > 0 || affected > 0 { rate = 1000 * Double(affected) / Double(max(running, affected)) }
            }
            buckets.append(
                ErrorBucket(
                    id: try row.text("bucket_id"), algorithm: FailureSignature.algorithm,
                    eventClass: FailureReport.EventClass(rawValue: try row.text("event_class")) ?? .application,
                    category: FailureReport.Category(rawValue: try row.text("category")) ?? .crash,
                    componentId: try row.optionalText("component_id").flatMap { ComponentID($0) }, imageId: image,
                    reason: try row.text("reason"),
                    frames: (try? JSONDecoder.rampart.decode([String].self, from: Data(try row.text("top_frames").utf8))) ?? [],
                    count: Int(try row.int("events")), reports: Int(try row.int("reports")), affectedDevices: affected,
                    firstSeen: try row.date("first_seen"), lastSeen: try row.date("last_seen"), crashRatePerThousand: rate))
        }
        return buckets
    }

    /// Reports, newest first.
    func failureReports(tenant: TenantID, filter: ErrorFilter, limit: Int) async throws -> [(FailureReport, bucket: String)] {
        let (clause, values) = filter.clause()
        return try await query(
            "SELECT * FROM failure_reports WHERE tenant_id = $1\(clause) ORDER BY time DESC, report_id LIMIT \(limit)",
            [.of(tenant)] + values
        ).map { row in
            (
                FailureReport(
                    reportId: UUID(uuidString: try row.text("report_id")) ?? UUID(),
                    deviceId: try DeviceID(try row.text("device_id")).orThrow(DatabaseError.column("device_id", expected: "device ID")),
                    time: try row.date("time"),
                    eventType: FailureReport.EventType(rawValue: try row.text("event_type")) ?? .unplanned,
                    eventClass: FailureReport.EventClass(rawValue: try row.text("event_class")) ?? .application,
                    category: FailureReport.Category(rawValue: try row.text("category")) ?? .crash,
                    componentId: try row.optionalText("component_id").flatMap { ComponentID($0) },
                    imageId: try row.optionalText("image_id").flatMap { ImageID($0) },
                    systemSoftwareVersion: try row.text("system_software_version"),
                    frames: (try? JSONDecoder.rampart.decode([String].self, from: Data(try row.text("frames").utf8))) ?? [],
                    details: try row.text("details"), count: Int(try row.int("count"))),
                try row.text("bucket_id")
            )
        }
    }

    /// Deletes reports older than `cutoff`; returns how many.
    func purgeFailureReports(before cutoff: Date) async throws -> Int {
        try await query("DELETE FROM failure_reports WHERE time < $1 RETURNING report_id", .of(cutoff)).count
    }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> any Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}
