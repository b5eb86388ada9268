import ArgumentParser
import Foundation
import RampartDevice
import RampartPKI

/// One `rampart-server` node on PostgreSQL, then two behind nginx, under the same
/// attestation storm from a virtual fleet.
struct NodesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "Attestation storms against one rampart-server node on PostgreSQL, then two behind nginx.",
        discussion: """
            Starts a throwaway PostgreSQL cluster, then a rampart-server node on it (the binary \
            beside this one), and lets a virtual fleet of --devices attest all at once (as after \
            an outage). Then a second node joins the same database behind nginx (TCP round robin, \
            so mutual TLS reaches the nodes) and a new fleet of the same size does the same. \
            Everything runs on this machine: the nodes, PostgreSQL, nginx and the fleet share its \
            cores, so a second node can only win what one node leaves idle here.
            """)

    @Option(help: "Devices in each fleet.") var devices = 2000
    @Option(help: "Requests in flight at once.") var concurrency = 64
    @Flag(help: "Print JSON.") var json = false

    struct Figures: Codable {
        var devices: Int
        var oneNodeAttestationsPerSecond: Double
        var twoNodesAttestationsPerSecond: Double
        var ratio: Double
        var oneNode: SimReport
        var twoNodes: SimReport
    }

    /// A rampart-server process.
    struct Node {
        let pid: pid_t
        let port: Int
        let fingerprint: String

        static func start(_ binary: String, name: String, directory: String, database: String) async throws -> Node {
            let port = try ChildProcess.freeLoopbackPort()
            let log = "\(directory)/\(name).log"
            let pid = try ChildProcess.spawn(
                binary,
                ["--data-dir", "\(directory)/\(name)", "--port", "\(port)", "--database", database, "--key-encryption-key-file",
                 "\(directory)/kek", "--manufacturer-ca", "\(directory)/manufacturer.pem", "--bootstrap-token-file",
                 "\(directory)/bootstrap.token", "--log-level", "error"],
                output: log)
            for _ in 0..<600 {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if let match = output.firstMatch(of: /root CA SHA-256: +([0-9a-f]{64})/) {
                    return Node(pid: pid, port: port, fingerprint: String(match.1))
                }
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { throw CLIError("rampart-server \(name) exited: \(output.suffix(2000))") }
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(pid, SIGKILL)
            throw CLIError("rampart-server \(name) did not start within 60 s; see \(log)")
        }

        func stop() async {
            kill(pid, SIGTERM)
            _ = try? await ChildProcess.wait(for: pid)
        }
    }

    func run() async throws {
        guard devices > 0, concurrency > 0 else { throw ValidationError("--devices and --concurrency must be positive") }
        let binary = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .deletingLastPathComponent().appendingPathComponent("rampart-server").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw CLIError("\(binary) is missing: swift build builds it") }
        guard FileManager.default.fileExists(atPath: "/usr/lib/nginx/modules/ngx_stream_module.so") else {
            throw CLIError("nginx's stream module is missing: run scripts/install-deps.sh")
        }
        let directory = try makeTemporaryDirectory(prefix: "rampart-bench-nodes")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Bench Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        try (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            .write(toFile: "\(directory)/kek", atomically: true, encoding: .utf8)
        var settings = FleetSimulation.Settings(devices: devices)
        settings.concurrency = concurrency
        settings.ramp = 0
        settings.duration = 0
        let quiet = json
        let progress: @Sendable (String) -> Void = { line in if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) } }

        let figures = try await LocalPostgres.with { database -> Figures in
            progress("PostgreSQL at \(database); starting node a")
            let a = try await Node.start(binary, name: "a", directory: directory, database: database)
            var nodes = [a]
            do {
                let token = try String(contentsOfFile: "\(directory)/bootstrap.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                func storm(_ server: String, _ label: String) async throws -> SimReport {
                    let root = try await LoginCommand.pinnedRoot(server: server, fingerprint: a.fingerprint)
                    let fleet = try await FleetSimulation.prepare(server: server, rootPEM: root, bootstrapToken: token, manufacturer: manufacturer)
                    progress("\(label): \(devices) devices attest at once")
                    return try await FleetSimulation(settings: settings, fleet: fleet, progress: progress).run()
                }
                let one = try await storm("https://127.0.0.1:\(a.port)", "one node")
                progress("starting node b on the same database, and nginx in front of both")
                let b = try await Node.start(binary, name: "b", directory: directory, database: database)
                nodes.append(b)
                let two = try await LocalNginx.balancing(["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"]) { port in
                    try await storm("https://127.0.0.1:\(port)", "two nodes")
                }
                for node in nodes { await node.stop() }
                func rate(_ report: SimReport) -> Double { report.allAttestedSeconds.map { Double(report.claimed) / $0 } ?? 0 }
                return Figures(
                    devices: devices, oneNodeAttestationsPerSecond: rate(one), twoNodesAttestationsPerSecond: rate(two),
                    ratio: rate(one) > 0 ? rate(two) / rate(one) : 0, oneNode: one, twoNodes: two)
            } catch {
                for node in nodes { await node.stop() }
                throw error
            }
        }
        if json {
            try printJSON(figures)
        } else {
            print(String(format: "one node on PostgreSQL:         %8.0f attestations/s (%d devices at once)", figures.oneNodeAttestationsPerSecond, devices))
            print(String(format: "two nodes behind nginx:         %8.0f attestations/s  = %.2f× one node",
                figures.twoNodesAttestationsPerSecond, figures.ratio))
            let errors = figures.oneNode.errors.merging(figures.twoNodes.errors, uniquingKeysWith: +)
            print(errors.isEmpty ? "no errors" : "errors: \(errors)")
        }
        if !figures.oneNode.errors.isEmpty || !figures.twoNodes.errors.isEmpty { throw ExitCode(1) }
    }
}
