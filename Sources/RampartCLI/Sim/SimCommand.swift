import ArgumentParser
import Crypto
public import Foundation
import Logging
import RampartImage
import RampartModel
public import RampartPKI
import WAT

/// `rampart sim`: a virtual fleet against a service, measured.
struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a virtual fleet of software-DICE devices against a Security Service and measure it.",
        discussion: """
            Without --server, the fleet runs against a service started in this process on SQLite \
            in a temporary directory, set up with a tenant, a product, a published release and a \
            small app deployed to the devices' group.

            With --server, the fleet runs against that service as the logged-in (or \
            $RAMPART_TOKEN) Tenant Administrator of --tenant. The service must trust the manufacturer \
            CA given by --manufacturer-cert and --manufacturer-key (create one with \
            `rampartd manufacturer-ca`, start the service with --manufacturer-ca), and the \
            devices run the published release --release. Their claims go into --group, or into a \
            new product's Production group.

            Each device attests (spread over --ramp seconds; 0 is the storm after an outage), \
            renews at half its certificate's life, checks for updates at the interval the service \
            asks for, downloads a new deployment's targets and reports a failure now and then \
            (--report-chance). Device time runs --time-scale times faster than the wall clock. \
            Progress goes to standard error; at the end, throughput and latency percentiles \
            (HdrHistogram) per operation, failures by kind, and the time until every device had \
            attested, projected linearly to a million devices.
            """)

    @Option(help: "Devices in the fleet.") var devices = 1000
    @Option(help: "Service URL; without it, a service runs in this process.") var server: String?
    @Option(help: "With --server: the service's root CA SHA-256 fingerprint (default: the one saved at login).") var fingerprint: String?
    @Option(help: "With --server: tenant ID or name (default: the selected tenant).") var tenant: String?
    @Option(help: "With --server: the device group to claim into (ID).") var group: String?
    @Option(help: "With --server: the published release the devices run (default: the newest unrevoked one).") var release: String?
    @Option(name: .customLong("manufacturer-cert"), help: "With --server: the manufacturer CA certificate (PEM).") var manufacturerCertificate: String?
    @Option(name: .customLong("manufacturer-key"), help: "With --server: the manufacturer CA private key (PEM).") var manufacturerKey: String?
    @Option(help: "Requests in flight at once.") var concurrency = 64
    @Option(help: "Wall seconds over which first attestations are spread (0: all at once).") var ramp: Double = 10
    @Option(help: "Wall seconds the fleet runs after the ramp.") var duration: Double = 30
    @Option(help: "Device seconds per wall second.") var timeScale: Double = 60
    @Option(help: "Chance of a failure report after each update check.") var reportChance = 0.05
    @Option(name: .customLong("config"), help: "Configuration file (default: ~/.config/rampart/config.json or $RAMPART_CONFIG).") var configPath: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard devices > 0 else { throw ValidationError("--devices must be at least 1") }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be at least 1") }
        guard ramp >= 0, duration >= 0 else { throw ValidationError("--ramp and --duration cannot be negative") }
        guard timeScale > 0 else { throw ValidationError("--time-scale must be positive") }
        guard (0...1).contains(reportChance) else { throw ValidationError("--report-chance is a probability, 0 to 1") }
        if server != nil, manufacturerCertificate == nil || manufacturerKey == nil {
            throw ValidationError("--server needs --manufacturer-cert and --manufacturer-key: the CA the service trusts for devices")
        }
    }

    var settings: FleetSimulation.Settings {
        var settings = FleetSimulation.Settings(devices: devices)
        settings.concurrency = concurrency
        settings.ramp = ramp
        settings.duration = duration
        settings.timeScale = timeScale
        settings.reportChance = reportChance
        return settings
    }

    func run() async throws {
        let progress: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let report: SimReport
        if let server {
            let fleet = try await remoteFleet(server)
            report = try await FleetSimulation(settings: settings, fleet: fleet, progress: progress).run()
        } else {
            let directory = try makeTemporaryDirectory(prefix: "rampart-sim")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let manufacturer = try CertificateAuthority.makeRoot(commonName: "Rampart Sim Manufacturing", now: Date())
            try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
            var logger = Logger(label: "rampart-sim")
            logger.logLevel = .critical
            progress("starting a Security Service in this process (SQLite in \(directory))")
            let settings = settings
            report = try await LocalService.run(
                dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/manufacturer.pem"], logger: logger
            ) { local in
                let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
                let fleet = try await FleetSimulation.prepare(
                    server: local.url, rootPEM: root, bootstrapToken: local.bootstrapToken, manufacturer: manufacturer)
                return try await FleetSimulation(settings: settings, fleet: fleet, progress: progress).run()
            }
        }
        if json {
            try printJSON(report)
        } else {
            print(Self.render(report))
        }
        if !report.errors.isEmpty || report.reportsStored != report.reportsAcknowledged {
            throw ExitCode(1)
        }
    }

    /// The fleet of a running service: the logged-in tenant, a group, the release, the CA.
    func remoteFleet(_ server: String) async throws -> FleetSimulation.Fleet {
        let configuration = try CLIConfiguration.load(from: CLIConfiguration.path(override: configPath))
        let rootPEM: String
        if let fingerprint {
            rootPEM = try await LoginCommand.pinnedRoot(server: server, fingerprint: fingerprint)
        } else if let saved = configuration.rootCAPEM, configuration.server.map({ Self.sameServer($0, server) }) == true {
            rootPEM = saved
        } else {
            throw CLIError("no root CA saved for \(server): pass --fingerprint or `rampart login` to it first")
        }
        guard let token = GlobalOptions.environmentToken ?? configuration.token else {
            throw CLIError("no token: run `rampart login` or set RAMPART_TOKEN to a Tenant Administrator's token")
        }
        guard let certificatePEM = try? String(contentsOfFile: manufacturerCertificate!, encoding: .utf8),
            let keyPEM = try? String(contentsOfFile: manufacturerKey!, encoding: .utf8)
        else { throw CLIError("cannot read the manufacturer CA certificate or key") }
        let manufacturer = try CertificateAuthority(certificatePEM: certificatePEM, privateKeyPEM: keyPEM)
        return try await APIClient.with(server: server, token: token, trustRootPEM: rootPEM) { client in
            var options = GlobalOptions()
            options.tenant = tenant
            options.configPath = configPath
            let tenantID = try await options.tenantID(client)
            let releases = try await client.releases().filter { $0.revokedAt == nil }
            guard let chosen = release.map({ wanted in releases.first { $0.version == wanted } }) ?? releases.max(by: { $0.publishedAt < $1.publishedAt })
            else {
                throw CLIError(release.map { "no unrevoked release \($0) is published" } ?? "no release is published: devices must run one (`rampart os publish`)")
            }
            let groupID: DeviceGroupID
            if let group {
                guard let id = DeviceGroupID(group) else { throw ValidationError("--group takes a device group ID") }
                groupID = id
            } else {
                let product = try await client.createProduct(
                    CreateProductRequest(name: "Rampart Sim \(Int(Date().timeIntervalSince1970))"), tenant: tenantID)
                groupID = try await client.deviceGroups(tenant: tenantID, product: product.id).first { $0.name == "Production" }!.id
            }
            return FleetSimulation.Fleet(
                server: server, rootPEM: rootPEM, token: token, tenant: tenantID, group: groupID, manufacturer: manufacturer,
                version: chosen.version, runtime: [UInt8](hexString: chosen.measurement) ?? [])
        }
    }

    static func sameServer(_ a: String, _ b: String) -> Bool {
        func trimmed(_ url: String) -> String { url.hasSuffix("/") ? String(url.dropLast()) : url }
        return trimmed(a) == trimmed(b)
    }

    static func render(_ report: SimReport) -> String {
        var lines = [
            "\(report.claimed) of \(report.devices) devices against \(report.server), \(report.concurrency) requests in flight, device time ×\(report.timeScale)",
            String(format: "enrolled in %.1f s, claimed in %.1f s, ran %.1f s", report.enrolSeconds, report.claimSeconds, report.runSeconds),
        ]
        if let all = report.allAttestedSeconds, let million = report.projectedMillionSeconds {
            lines.append(String(format: "every device attested %.1f s after the start (%.0f/s); at that rate 1,000,000 devices take %.0f s (%.1f min)",
                all, Double(report.claimed) / all, million, million / 60))
        }
        lines.append("")
        lines.append("operation          count   failed       /s    p50 ms    p90 ms    p99 ms  p99.9 ms    max ms")
        for operation in report.operations {
            lines.append(operation.name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: " %9d %8d %8.1f %9.1f %9.1f %9.1f %9.1f %9.1f",
                operation.count, operation.failed, operation.perSecond, operation.latency.p50Ms,
                operation.latency.p90Ms, operation.latency.p99Ms, operation.latency.p999Ms, operation.latency.maxMs))
        }
        lines.append("(/s: each operation's count over the time from its first start to its last end)")
        lines.append(String(format: "schedule lag: p50 %.1f ms, p99 %.1f ms, max %.1f ms", report.scheduleLag.p50Ms, report.scheduleLag.p99Ms, report.scheduleLag.maxMs))
        lines.append("failure reports: \(report.reportsAcknowledged) acknowledged, \(report.reportsStored) stored")
        if report.errors.isEmpty {
            lines.append("no errors")
        } else {
            lines.append("errors by kind:")
            for (kind, count) in report.errors.sorted(by: { $0.value > $1.value }) { lines.append("  \(kind): \(count)") }
        }
        return lines.joined(separator: "\n")
    }
}

extension FleetSimulation {
    /// A fresh fleet on a new service: publishes a release for the simulated runtime, creates
    /// a tenant and a product, and deploys a small app to the product's Production group, so
    /// that devices download it. `bootstrapToken` is the service's first administrator's.
    public static func prepare(
        server: String, rootPEM: String, bootstrapToken: String, manufacturer: CertificateAuthority
    ) async throws -> Fleet {
        let version = "sim-1.0.0"
        let runtime = Array(SHA256.hash(data: Data("rampart sim runtime \(version)".utf8)))
        let created = try await APIClient.with(server: server, token: bootstrapToken, trustRootPEM: rootPEM) { client in
            do {
                _ = try await client.publishRelease(PublishReleaseRequest(version: version, measurement: runtime.hexString))
            } catch let failure as APIFailure where failure.body.error == "release_exists" {
                // A fleet prepared before on this service published it.
            }
            return try await client.createTenant(CreateTenantRequest(name: "Sim Fleet \(UUID().uuidString.prefix(8))"))
        }
        let tenant = created.tenant.id
        let group = try await APIClient.with(server: server, token: created.token.secret, trustRootPEM: rootPEM) { client in
            let product = try await client.createProduct(CreateProductRequest(name: "Sim Sensor"), tenant: tenant)
            let group = try await client.deviceGroups(tenant: tenant, product: product.id).first { $0.name == "Production" }!
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "sensor", "ComponentId": "\#(ComponentID.random())", "EntryPoint": "sensor.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 64}}"#.utf8)
            let wasm = Data(try wat2wasm(#"(module (memory (export "memory") 1) (func (export "_start")))"#))
            let package = try ImagePackage.app(manifest: manifest, wasm: wasm, version: "1.0.0", securityVersion: 1)
            let image = try await client.addImage(package: try package.zipped(), tenant: tenant)
            _ = try await client.createDeployment(images: [image.id], group: group.id, tenant: tenant)
            return group.id
        }
        return Fleet(
            server: server, rootPEM: rootPEM, token: created.token.secret, tenant: tenant, group: group, manufacturer: manufacturer,
            version: version, runtime: runtime)
    }
}
