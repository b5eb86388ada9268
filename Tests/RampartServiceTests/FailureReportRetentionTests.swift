import Foundation
import RampartModel
@testable import RampartService
import Testing

/// Failure reports past the retention period are purged; newer ones stay.
@Suite struct FailureReportRetentionTests {
    @Test(arguments: [DatabaseEngine.sqlite, .postgres])
    func expiredReportsArePurged(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            let tenant = TenantID(uuid: UUID())
            let device = DeviceID(String(repeating: "ab", count: 32))!
            let now = harness.api.now()
            func report(ageDays: Double) -> FailureReport {
                FailureReport(
                    deviceId: device, time: now.addingTimeInterval(-ageDays * 86_400), eventType: .unplanned, eventClass: .os,
                    category: .runtimeCrash, systemSoftwareVersion: "1.0.0", details: "aged \(ageDays) days")
            }
            let old = report(ageDays: 15), recent = report(ageDays: 13)
            let purged = try await harness.database.transaction { db in
                #expect(try await db.insertFailureReport(old, tenant: tenant, group: nil, at: now))
                #expect(try await db.insertFailureReport(recent, tenant: tenant, group: nil, at: now))
                // The same report again is not stored twice.
                #expect(try await db.insertFailureReport(recent, tenant: tenant, group: nil, at: now) == false)
                return try await db.purgeFailureReports(before: now.addingTimeInterval(-harness.api.errorRetention))
            }
            #expect(purged == 1)
            let left = try await harness.database.read { db in try await db.failureReports(tenant: tenant, filter: ErrorFilter(), limit: 10) }
            #expect(left.map(\.0.reportId) == [recent.reportId])
            // Sums read back as numbers on both engines (PostgreSQL's SUM over BIGINT is NUMERIC).
            let buckets = try await harness.database.read { db in try await db.errorBuckets(tenant: tenant, filter: ErrorFilter()) }
            #expect(buckets.map(\.count) == [1] && buckets.first?.affectedDevices == 1, "\(buckets)")
        }
    }
}
