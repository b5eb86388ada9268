import Foundation
import Hummingbird
import Logging
import RampartModel
import ServiceLifecycle

extension API {
    /// Failure reports: devices upload them over mutual TLS; tenant members read them as
    /// buckets (``FailureSignature``) or export them.
    var errorEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/device/reports") { request, context in
                let (device, tenant) = try context.requireDevice()
                let batch = try await request.decodeBody(FailureReportBatch.self)
                let now = now()
                try Self.validate(batch, device: device, now: now)
                let receipt = try await database.transaction { db in
                    let group = try await db.device(device, in: tenant)?.deviceGroupId
                    var accepted = 0
                    for report in batch.reports where try await db.insertFailureReport(report, tenant: tenant, group: group, at: now) {
                        accepted += 1
                    }
                    // New failures may halt the group's staged rollout.
                    if accepted > 0, let group { try await Rollouts.halt(group: group, tenant: tenant, db: db, now: now) }
                    return FailureReportReceipt(accepted: accepted, duplicates: batch.reports.count - accepted)
                }
                return try .json(receipt)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/errors") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let filter = try request.errorFilter(now: now())
                return try .json(ListDocument(items: try await database.read { db in try await db.errorBuckets(tenant: tenant, filter: filter) }))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/errors/export") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let filter = try request.errorFilter(now: now())
                let reports = try await database.read { db in
                    try await db.failureReports(tenant: tenant, filter: filter, limit: Self.maxExportRows)
                }
                return .text(ErrorExport.csv(reports), contentType: "text/csv; charset=utf-8")
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/errors/{bucketId}") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let bucket = try context.parameters.require("bucketId")
                guard bucket.utf8.count == 64, bucket.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                    throw ServiceError.invalidField("bucketId", "must be a bucket ID: 64 lowercase hex characters")
                }
                var bucketFilter = try request.errorFilter(now: now())
                bucketFilter.bucket = bucket
                let filter = bucketFilter
                let found = try await database.read { db -> ErrorBucket? in
                    guard var found = try await db.errorBuckets(tenant: tenant, filter: filter, limit: 1).first else { return nil }
                    found.samples = try await db.failureReports(tenant: tenant, filter: filter, limit: 5).map(\.0)
                    return found
                }
                guard let found else { throw ServiceError.notFound("error bucket", bucket) }
                return try .json(found)
            },
        ]
    }

    static let maxExportRows = 100_000

    /// A batch is taken whole or not at all: every report must be this device's, within
    /// bounds, and not from the future.
    static func validate(_ batch: FailureReportBatch, device: DeviceID, now: Date) throws {
        guard (1...FailureReportBatch.maxReports).contains(batch.reports.count) else {
            throw ServiceError.invalidField("reports", "must hold 1–\(FailureReportBatch.maxReports) reports")
        }
        guard Set(batch.reports.map(\.reportId)).count == batch.reports.count else {
            throw ServiceError.invalidField("reports", "a report ID appears twice in the batch")
        }
        for (index, report) in batch.reports.enumerated() {
            let field = "reports[\(index)]"
            guard report.deviceId == device else {
                throw ServiceError.invalidField("\(field).deviceId", "must be the device presenting the certificate")
            }
            guard report.time <= now.addingTimeInterval(300), report.time >= now.addingTimeInterval(-365 * 86_400) else {
                throw ServiceError.invalidField("\(field).time", "must be within the last year and not in the future")
            }
            guard (1...1_000_000).contains(report.count) else { throw ServiceError.invalidField("\(field).count", "must be 1–1000000") }
            guard report.frames.count <= FailureReport.maxFrames, report.frames.allSatisfy({ !$0.isEmpty && $0.count <= FailureReport.maxFrameLength }) else {
                throw ServiceError.invalidField(
                    "\(field).frames", "at most \(FailureReport.maxFrames) frames of 1–\(FailureReport.maxFrameLength) characters")
            }
            guard report.details.count <= FailureReport.maxDetailsLength else {
                throw ServiceError.invalidField("\(field).details", "must be at most \(FailureReport.maxDetailsLength) characters")
            }
            guard isValidVersion(report.systemSoftwareVersion) else {
                throw ServiceError.invalidField("\(field).systemSoftwareVersion", "is not a version")
            }
            if report.eventClass == .application, report.componentId == nil,
                ![.denialStorm, .reportsDropped].contains(report.category)
            {
                throw ServiceError.invalidField("\(field).componentId", "an application report names its component")
            }
        }
    }
}

extension Request {
    /// `since` (a duration back from now: `30m`, `24h`, `7d`), `deviceGroupId`, `imageId`.
    func errorFilter(now: Date) throws -> ErrorFilter {
        var filter = ErrorFilter()
        if let since = uri.queryParameters.get("since") {
            guard let date = ErrorFilter.parseSince(String(since), now: now) else {
                throw ServiceError.invalidField("since", "must be a duration back from now: 1–7 digits and m, h or d, such as 30m, 24h, 7d")
            }
            filter.since = date
        }
        filter.group = try queryID("deviceGroupId", as: DeviceGroupID.self)
        filter.image = try queryID("imageId", as: ImageID.self)
        return filter
    }
}

extension ErrorFilter {
    static func parseSince(_ text: String, now: Date) -> Date? {
        let digits = text.dropLast()
        guard let unit = text.last, (1...7).contains(digits.count), digits.allSatisfy(\.isASCII), let amount = Double(digits),
            digits.allSatisfy(\.isNumber)
        else { return nil }
        let seconds: Double? = switch unit {
        case "m": 60
        case "h": 3600
        case "d": 86_400
        default: nil
        }
        return seconds.map { now.addingTimeInterval(-amount * $0) }
    }
}

/// `errors export`: one row per report. Columns, in order: report_id, bucket_id, time
/// (ISO 8601 UTC), device_id, event_type, event_class, category, component_id, image_id,
/// system_software_version, count, frames (innermost first, separated by ` | `), details.
enum ErrorExport {
    static let columns = [
        "report_id", "bucket_id", "time", "device_id", "event_type", "event_class", "category", "component_id", "image_id",
        "system_software_version", "count", "frames", "details",
    ]

    static func csv(_ reports: [(FailureReport, bucket: String)]) -> String {
        var lines = [columns.joined(separator: ",")]
        for (report, bucket) in reports {
            let fields = [
                report.reportId.uuidString.lowercased(), bucket, report.time.formatted(.iso8601), report.deviceId.hex,
                report.eventType.rawValue, report.eventClass.rawValue, report.category.rawValue, report.componentId?.description ?? "",
                report.imageId?.description ?? "", report.systemSoftwareVersion, String(report.count),
                report.frames.joined(separator: " | "), report.details,
            ]
            lines.append(fields.map(escape).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
    /// spreadsheet does not run a device-supplied string as a formula.
    static func escape(_ field: String) -> String {
        var text = field
        if let first = text.first, "=+-@".contains(first) { text = "'" + text }
        guard text.contains(where: { [",", "\"", "\n", "\r"].contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Purges failure reports past the retention period: at start, then hourly.
struct FailureReportRetention: Service {
    let api: API

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let cutoff = api.now().addingTimeInterval(-api.errorRetention)
                let purged = try await api.database.transaction { db in try await db.purgeFailureReports(before: cutoff) }
                if purged > 0 { api.logger.info("purged expired failure reports", metadata: ["count": "\(purged)"]) }
            } catch {
                api.logger.error("purging failure reports failed; will retry", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
