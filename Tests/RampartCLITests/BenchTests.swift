import Foundation
import RampartDevice
import RampartModel
@testable import RampartCLI
import RampartTestSupport
import Testing

/// The benchmark commands run and report sensible figures. Their numbers are not asserted
/// (figures, not timed tests): that each runs, measures something and keeps its promises
/// (no report lost, no error) is.
@Suite struct BenchTests {
    func bench<T: Decodable>(_ arguments: [String], as type: T.Type) async throws -> T {
        let (status, output) = try await Command.run(CLIBinaryTests.binary, ["bench"] + arguments + ["--json"])
        #expect(status == 0, "\(output)")
        let json = try #require(output.firstRange(of: "{\n").map { String(output[$0.lowerBound...]) }, "\(output)")
        return try JSONDecoder.rampart.decode(T.self, from: Data(json.utf8))
    }

    @Test func updatesAndReportsAndApps() async throws {
        let updates = try await bench(["updates", "--seconds", "0.5", "--clients", "2"], as: UpdatesBench.Figures.self)
        #expect(updates.serviceChecksPerSecond > 0 && updates.nginxChecksPerSecond > 0 && updates.bytesPerCheck > 0)

        let reports = try await bench(["reports", "--seconds", "0.5", "--devices", "2", "--batch", "5"], as: ReportsBench.Figures.self)
        #expect(reports.acknowledged > 0 && reports.lost == 0 && reports.stored == reports.acknowledged)

        let apps = try await bench(["apps", "--starts", "2", "--calls", "1000", "--apps", "2"], as: AppsBench.Figures.self)
        #expect(apps.coldStartMedianMs > 0 && apps.apps == 2)
    }

    @Test func oneNodeAndTwoOnPostgreSQL() async throws {
        let nodes = try await bench(["nodes", "--devices", "20", "--concurrency", "8"], as: NodesBench.Figures.self)
        #expect(nodes.oneNode.claimed == 20 && nodes.twoNodes.claimed == 20)
        #expect(nodes.oneNodeAttestationsPerSecond > 0 && nodes.twoNodesAttestationsPerSecond > 0)
        #expect(nodes.oneNode.errors.isEmpty && nodes.twoNodes.errors.isEmpty)
    }

    @Test func badArgumentsAreRefusedWithTheReason() async throws {
        let (status, output) = try await Command.run(CLIBinaryTests.binary, ["bench", "reports", "--batch", "1000"])
        #expect(status != 0 && output.contains("--batch is 1 to \(FailureReportBatch.maxReports)"), "\(output)")
    }
}
