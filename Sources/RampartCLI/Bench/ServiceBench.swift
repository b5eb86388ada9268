import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOHTTP1
import RampartModel
import RampartPKI
import RampartTUF

/// A service in this process with a fleet of attested virtual devices, for the service
/// benchmarks.
struct BenchFleet: Sendable {
    let local: LocalService
    let rootPEM: String
    let fleet: FleetSimulation.Fleet
    let devices: [VirtualDevice]
    let credentials: [DeviceSession.Credential]

    static func with<T: Sendable>(devices count: Int, _ body: (BenchFleet) async throws -> T) async throws -> T {
        let directory = try makeTemporaryDirectory(prefix: "rampart-bench")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Bench Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/mfg.pem", atomically: true, encoding: .utf8)
        var logger = Logger(label: "rampart-bench")
        logger.logLevel = .critical
        return try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/mfg.pem"], logger: logger
        ) { local in
            let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
            let fleet = try await FleetSimulation.prepare(
                server: local.url, rootPEM: root, bootstrapToken: local.bootstrapToken, manufacturer: manufacturer)
            var devices: [VirtualDevice] = []
            var credentials: [DeviceSession.Credential] = []
            try await APIClient.with(server: local.url, token: fleet.token, trustRootPEM: root) { client in
                for _ in 0..<count {
                    let device = try await VirtualDevice.make(manufacturer: manufacturer, runtime: fleet.runtime, version: fleet.version)
                    _ = try await client.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: fleet.group), tenant: fleet.tenant)
                    credentials.append(try await DeviceSession.attest(client, monitor: device.monitor))
                    devices.append(device)
                }
            }
            return try await body(BenchFleet(local: local, rootPEM: root, fleet: fleet, devices: devices, credentials: credentials))
        }
    }
}

/// Runs `body` with one client per credential (each its own keep-alive connection), and
/// shuts them all down afterwards.
func withDeviceClients<T: Sendable>(
    server: String, trustRootPEM: String, credentials: [DeviceSession.Credential], _ body: ([APIClient]) async throws -> T
) async throws -> T {
    let clients = try credentials.map { try APIClient(server: server, token: nil, trustRootPEM: trustRootPEM, credential: $0) }
    do {
        let result = try await body(clients)
        for client in clients { try await client.http.shutdown() }
        return result
    } catch {
        for client in clients { try? await client.http.shutdown() }
        throw error
    }
}

/// Runs `body` on `workers` tasks until `seconds` pass; returns the units done per second.
func throughput(
    workers: Int, seconds: Double, _ body: @escaping @Sendable (Int) async throws -> Int
) async throws -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + .seconds(seconds)
    let done = try await withThrowingTaskGroup(of: Int.self) { group in
        for worker in 0..<workers {
            group.addTask {
                var units = 0
                while clock.now < deadline { units += try await body(worker) }
                return units
            }
        }
        return try await group.reduce(0, +)
    }
    return Double(done) / (clock.now - start).seconds
}

/// Update checks per second — a device's poll: the group's TUF timestamp, then the targets
/// metadata it names — over mutual TLS with keep-alive, beside nginx serving the same bytes
/// to the same client with the same client certificate in the same run.
struct UpdatesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "updates",
        abstract: "Update checks per second beside nginx serving the same metadata bytes (the static-file ceiling).",
        discussion: """
            One update check is two GETs over mutual TLS on a keep-alive connection: the device \
            group's timestamp.json (which the service checks is current, renewing it when due) and \
            the versioned targets.json it names. nginx (Debian's, one worker) then serves the same \
            two files, byte for byte, to the same clients presenting the same device certificate. \
            Both are driven by this process's HTTP client, so client cost is in both figures.
            """)

    @Option(help: "Seconds for each measurement.") var seconds: Double = 5
    @Option(help: "Concurrent clients, each on its own connection.") var clients = 8
    @Flag(help: "Print JSON.") var json = false

    struct Figures: Codable {
        var serviceChecksPerSecond: Double
        var nginxChecksPerSecond: Double
        var shareOfCeiling: Double
        var clients: Int
        var bytesPerCheck: Int
    }

    func run() async throws {
        guard seconds > 0, clients > 0 else { throw ValidationError("--seconds and --clients must be positive") }
        let (seconds, clients) = (seconds, clients)
        let figures = try await BenchFleet.with(devices: clients) { bench -> Figures in
            let repository = "/v1/device/tuf/\(bench.fleet.group)"
            let (timestamp, targetsFile, targets) = try await APIClient.with(
                server: bench.local.url, token: nil, trustRootPEM: bench.rootPEM, credential: bench.credentials[0]
            ) { client in
                let timestamp = try await client.send(.GET, "\(repository)/metadata/timestamp.json", body: nil).1
                let snapshotVersion = try TimestampMetadata(json: try SignedEnvelope(parsing: timestamp, limit: 1 << 20).signed).snapshot.version
                let snapshot = try await client.send(.GET, "\(repository)/metadata/\(snapshotVersion).snapshot.json", body: nil).1
                let targetsVersion = try SnapshotMetadata(json: try SignedEnvelope(parsing: snapshot, limit: 1 << 20).signed).targets.version
                let targetsFile = "\(targetsVersion).targets.json"
                return (timestamp, targetsFile, try await client.send(.GET, "\(repository)/metadata/\(targetsFile)", body: nil).1)
            }
            func rate(server: String, trust: String, paths: [String]) async throws -> Double {
                try await withDeviceClients(server: server, trustRootPEM: trust, credentials: bench.credentials) { connections in
                    try await throughput(workers: clients, seconds: seconds) { worker in
                        for path in paths { _ = try await connections[worker].send(.GET, path, body: nil) }
                        return 1
                    }
                }
            }
            if !json { print("measuring the service: \(clients) clients for \(seconds) s …") }
            let service = try await rate(
                server: bench.local.url, trust: bench.rootPEM,
                paths: ["\(repository)/metadata/timestamp.json", "\(repository)/metadata/\(targetsFile)"])

            // nginx, with a certificate of its own CA, trusting the tenant's device CA chain.
            let webCA = try CertificateAuthority.makeRoot(commonName: "Bench Web CA", now: Date())
            let webKey = P256.Signing.PrivateKey()
            let webCertificate = try webCA.issueServerCertificate(
                hostnames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], publicKey: webKey.publicKey, now: Date())
            let chain = try await APIClient.with(server: bench.local.url, token: bench.fleet.token, trustRootPEM: bench.rootPEM) {
                try await $0.chainPEM(tenant: bench.fleet.tenant)
            }
            if !json { print("measuring nginx serving the same bytes …") }
            let ceiling = try await LocalNginx.with(
                certificatePEM: webCertificate.pemString, keyPEM: webKey.pemRepresentation, clientCAPEM: chain,
                files: ["timestamp.json": timestamp, targetsFile: targets]
            ) { nginx in
                try await rate(
                    server: "https://127.0.0.1:\(nginx.port)", trust: webCA.certificate.pemString,
                    paths: ["/files/timestamp.json", "/files/\(targetsFile)"])
            }
            return Figures(
                serviceChecksPerSecond: service, nginxChecksPerSecond: ceiling, shareOfCeiling: service / ceiling, clients: clients,
                bytesPerCheck: timestamp.count + targets.count)
        }
        if json {
            try printJSON(figures)
        } else {
            print(String(format: "nginx, same bytes, same client certificate:  %8.0f checks/s", figures.nginxChecksPerSecond))
            print(String(format: "rampart-server update checks:               %8.0f checks/s  = %.1f%% of the ceiling",
                figures.serviceChecksPerSecond, figures.shareOfCeiling * 100))
            print("(one check = timestamp.json + targets.json, \(figures.bytesPerCheck) bytes, \(figures.clients) keep-alive clients)")
        }
    }
}

/// Failure reports ingested per second, and proof that none was lost: every acknowledged
/// report is counted back from the service's buckets.
struct ReportsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reports",
        abstract: "Failure reports ingested per second, each batch acknowledged and every report counted back.",
        discussion: """
            --devices attested virtual devices upload batches of --batch reports (distinct report \
            IDs) over mutual TLS, each device on its own keep-alive connection, for --seconds. The \
            service stores and buckets each report in the upload's transaction. Afterwards the \
            reports in this run's bucket are counted: the command fails if any acknowledged report \
            is missing.
            """)

    @Option(help: "Seconds to upload for.") var seconds: Double = 5
    @Option(help: "Devices uploading at once.") var devices = 8
    @Option(help: "Reports in each upload (at most \(FailureReportBatch.maxReports)).") var batch = 10
    @Flag(help: "Print JSON.") var json = false

    struct Figures: Codable {
        var reportsPerSecond: Double
        var uploadsPerSecond: Double
        var acknowledged: Int
        var stored: Int
        var lost: Int
        var batch: Int
        var devices: Int
    }

    func run() async throws {
        guard seconds > 0, devices > 0 else { throw ValidationError("--seconds and --devices must be positive") }
        guard (1...FailureReportBatch.maxReports).contains(batch) else { throw ValidationError("--batch is 1 to \(FailureReportBatch.maxReports)") }
        let (seconds, devices, batch) = (seconds, devices, batch)
        let figures = try await BenchFleet.with(devices: devices) { bench -> Figures in
            let marker = "rampart_bench_" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let acknowledged = Counter()
            let component = ComponentID.random()
            if !json { print("uploading from \(devices) devices for \(seconds) s, \(batch) reports per upload …") }
            let uploads = try await withDeviceClients(
                server: bench.local.url, trustRootPEM: bench.rootPEM, credentials: bench.credentials
            ) { clients in try await throughput(workers: devices, seconds: seconds) { worker in
                let device = bench.devices[worker].id
                let reports = (0..<batch).map { index in
                    FailureReport(
                        deviceId: device, time: Date(), eventType: .unplanned, eventClass: .application, category: .crash,
                        componentId: component, systemSoftwareVersion: bench.fleet.version, frames: [marker, "main"], details: "Trap: unreachable (bench \(index))")
                }
                let receipt: FailureReportReceipt = try await clients[worker].post("/v1/device/reports", FailureReportBatch(reports: reports))
                acknowledged.add(receipt.accepted)
                return 1
            } }
            let stored = try await APIClient.with(server: bench.local.url, token: bench.fleet.token, trustRootPEM: bench.rootPEM) {
                try await $0.errorBuckets(tenant: bench.fleet.tenant, since: "1d").filter { $0.frames.first == marker }.reduce(0) { $0 + $1.reports }
            }
            let total = acknowledged.value
            return Figures(
                reportsPerSecond: uploads * Double(batch), uploadsPerSecond: uploads, acknowledged: total, stored: stored,
                lost: total - stored, batch: batch, devices: devices)
        }
        if json {
            try printJSON(figures)
        } else {
            print(String(format: "%8.0f reports/s  (%.0f uploads/s of %d)", figures.reportsPerSecond, figures.uploadsPerSecond, figures.batch))
            print("\(figures.acknowledged) acknowledged, \(figures.stored) stored: \(figures.lost == 0 ? "none lost" : "\(figures.lost) LOST")")
        }
        if figures.lost != 0 { throw ExitCode(1) }
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder.rampart
    encoder.outputFormatting.insert(.prettyPrinted)
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
