import Foundation
import RampartDevice
import Logging
@testable import RampartCLI
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing

/// `rampart sim`: a virtual fleet really attests, renews, checks, downloads and reports
/// against a live service, and what it claims to have done is what the service holds.
@Suite struct SimTests {
    static func withService<T: Sendable>(
        trusting: Bool = true, _ body: (LocalService, CertificateAuthority, String) async throws -> T
    ) async throws -> T {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Sim Test Manufacturing", now: Date())
        let trusted = trusting ? manufacturer : try CertificateAuthority.makeRoot(commonName: "Another Manufacturer", now: Date())
        try trusted.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        var logger = Logger(label: "sim-test")
        logger.logLevel = .error
        return try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/manufacturer.pem"], logger: logger
        ) { local in
            let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
            return try await body(local, manufacturer, root)
        }
    }

    @Test func aVirtualFleetLivesAgainstTheService() async throws {
        try await Self.withService { local, manufacturer, root in
            let fleet = try await FleetSimulation.prepare(
                server: local.url, rootPEM: root, bootstrapToken: local.bootstrapToken, manufacturer: manufacturer)
            var settings = FleetSimulation.Settings(devices: 24)
            settings.concurrency = 8
            settings.ramp = 1
            settings.duration = 4
            // Certificates last a day: at 40,000× a device renews about every second. Every
            // device comes up (attests, checks, downloads, reports) however slow the machine;
            // renewals need the service to keep up, as it does even when every test runs at once.
            settings.timeScale = 40_000
            settings.reportChance = 1
            let report = try await FleetSimulation(settings: settings, fleet: fleet, progress: { _ in }).run()
            let counts = Dictionary(uniqueKeysWithValues: report.operations.map { ($0.name, $0.count) })

            #expect(report.errors.isEmpty, "\(report.errors)")
            #expect(report.claimed == 24 && counts["claim"] == 24)
            #expect(counts["attest"] == 24, "every device attested once, first")
            #expect((counts["renew"] ?? 0) > 0, "devices renewed at half-life: \(counts)")
            #expect(counts["download"] == 24, "every device downloaded the deployment once: \(counts)")
            #expect((counts["update-check"] ?? 0) >= 24)
            #expect(report.reportsAcknowledged > 0 && report.reportsStored == report.reportsAcknowledged, "no report lost")
            #expect(report.allAttestedSeconds != nil && report.projectedMillionSeconds! > report.allAttestedSeconds!)
            for operation in report.operations { #expect(operation.latency.p50Ms > 0 && operation.latency.maxMs >= operation.latency.p99Ms) }

            // The service holds what the simulation says it did.
            try await APIClient.with(server: local.url, token: fleet.token, trustRootPEM: root) { client in
                let devices = try await client.devices(tenant: fleet.tenant, group: fleet.group)
                #expect(devices.count == 24)
                let audit = try await client.auditEntries(tenant: fleet.tenant, limit: 1000)
                #expect(audit.filter { $0.action == "device.claim" }.count == 24)
            }
        }
    }

    @Test func aFleetTheServiceDoesNotTrustIsRefusedWithAReason() async throws {
        try await Self.withService(trusting: false) { local, manufacturer, root in
            let fleet = try await FleetSimulation.prepare(
                server: local.url, rootPEM: root, bootstrapToken: local.bootstrapToken, manufacturer: manufacturer)
            var settings = FleetSimulation.Settings(devices: 3)
            settings.duration = 0
            settings.ramp = 0
            await #expect {
                try await FleetSimulation(settings: settings, fleet: fleet, progress: { _ in }).run()
            } throws: { error in
                let text = "\(error)"
                return text.contains("no device could be claimed") && text.contains("claim: ") && text.contains("×3")
            }
        }
    }

    @Test func theCommandPrintsItsFiguresAsJSON() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try await Command.run(
            CLIBinaryTests.binary,
            ["sim", "--devices", "6", "--ramp", "0", "--duration", "1", "--concurrency", "4", "--json", "--config", "\(directory)/none.json"])
        #expect(status == 0, "\(output)")
        let json = try #require(output.range(of: "\n{").map { String(output[$0.lowerBound...]) } ?? (output.hasPrefix("{") ? output : nil))
        let report = try JSONDecoder.rampart.decode(SimReport.self, from: Data(json.utf8))
        #expect(report.claimed == 6 && report.errors.isEmpty)
        #expect(report.operations.first { $0.name == "attest" }?.count == 6)
        #expect(output.contains("enrolling 6 software-DICE devices"), "progress goes to standard error")

        let refused = try await Command.run(CLIBinaryTests.binary, ["sim", "--devices", "0"])
        #expect(refused.status != 0 && refused.output.contains("--devices must be at least 1"))
        let incomplete = try await Command.run(CLIBinaryTests.binary, ["sim", "--server", "https://127.0.0.1:1"])
        #expect(incomplete.status != 0 && incomplete.output.contains("--manufacturer-cert and --manufacturer-key"))
    }
}
