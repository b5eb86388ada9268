import ArgumentParser
import Crypto
import Foundation
import Logging
import RampartDevice
import RampartModel
import RampartPKI
import RampartService
import X509

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Rampart against the physical limits of this machine.",
        subcommands: [AttestationBench.self, UpdatesBench.self, ReportsBench.self, NodesBench.self, AppsBench.self]
    )
}

/// Attestations per second, in-process and over HTTPS on loopback, beside the machine's
/// raw ECDSA P-256 sign + verify rate measured in the same run.
struct AttestationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attestation",
        abstract: "Attestations per second beside the raw ECDSA P-256 sign+verify rate, one thread each.",
        discussion: """
            Ceiling: swift-crypto P-256 sign + verify pairs per second on one thread. An attestation \
            costs the service one verification (the evidence's signature; the Alias certificate's \
            too, the first time the service sees that certificate) and one signature (the device \
            certificate), plus storage. In-process: the service's own challenge and attest calls on \
            SQLite, timing only the service side — once for one device renewing again and again \
            (its Alias certificate known to the service), once with a new launch, and so a new \
            Alias certificate, before every attestation. Loopback: renewals through HTTPS (TLS \
            1.3), one request at a time. Device-side work (launching, building evidence) is \
            excluded from all service figures.
            """)

    @Option(help: "Seconds for each measurement.") var seconds: Double = 3
    @Flag(help: "Print JSON.") var json = false

    struct Figures: Codable {
        var signVerifyPerSecond: Double
        /// Renewals within one launch: the Alias certificate is one the service verified already.
        var inProcessPerSecond: Double
        /// The first attestation of each launch: a new Alias certificate every time.
        var inProcessFirstOfLaunchPerSecond: Double
        var loopbackHTTPSPerSecond: Double
        var inProcessShareOfCeiling: Double
        var inProcessFirstOfLaunchShareOfCeiling: Double
        var attestations: Int
    }

    func run() async throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        let ceiling = Self.signVerifyRate(seconds: seconds)
        if !json { print(String(format: "raw P-256 sign+verify (swift-crypto, 1 thread):   %10.0f /s", ceiling)) }

        let seconds = seconds
        let figures = try await BenchFleet.with(devices: 1) { bench -> Figures in
            let local = bench.local
            let root = bench.rootPEM
            let monitor = bench.devices[0].monitor
            let record = bench.devices[0].record
            let clientKey = Array(P256.Signing.PrivateKey().publicKey.derRepresentation)
            let deviceID = record.deviceId
            func evidence(_ nonce: String) async throws -> AttestationEvidence {
                try await monitor.evidence(nonce: nonce, clientKey: clientKey)
            }

            var inProcessCount = 0
            var inProcessTime: Duration = .zero
            let clock = ContinuousClock()
            while inProcessTime < .seconds(seconds) {
                let started = clock.now
                let challenge = try await local.api.challenge(for: deviceID)
                var spent = clock.now - started
                let built = try await evidence(challenge.nonce)
                let attestStarted = clock.now
                _ = try await local.api.attest(built)
                spent += clock.now - attestStarted
                inProcessTime += spent
                inProcessCount += 1
            }
            let inProcess = Double(inProcessCount) / inProcessTime.seconds

            // A new launch before each attestation: what a device's first attestation after
            // boot, and every attestation of a renewal storm, costs the service.
            let device = bench.devices[0]
            var firstCount = 0
            var firstTime: Duration = .zero
            while firstTime < .seconds(seconds) {
                let launched = SecurityMonitor(processor: device.processor, softwareVersion: bench.fleet.version)
                try await launched.launch(runtime: bench.fleet.runtime)
                let started = clock.now
                let challenge = try await local.api.challenge(for: deviceID)
                var spent = clock.now - started
                let built = try await launched.evidence(nonce: challenge.nonce, clientKey: clientKey)
                let attestStarted = clock.now
                _ = try await local.api.attest(built)
                spent += clock.now - attestStarted
                firstTime += spent
                firstCount += 1
            }
            let firstOfLaunch = Double(firstCount) / firstTime.seconds

            var loopbackCount = 0
            var loopbackTime: Duration = .zero
            try await APIClient.with(server: local.url, token: nil, trustRootPEM: root) { client in
                while loopbackTime < .seconds(seconds) {
                    let started = clock.now
                    let challenge = try await client.attestationChallenge(device: deviceID)
                    var spent = clock.now - started
                    let built = try await evidence(challenge.nonce)
                    let attestStarted = clock.now
                    _ = try await client.submitEvidence(built)
                    spent += clock.now - attestStarted
                    loopbackTime += spent
                    loopbackCount += 1
                }
            }
            let loopback = Double(loopbackCount) / loopbackTime.seconds
            return Figures(
                signVerifyPerSecond: ceiling, inProcessPerSecond: inProcess, inProcessFirstOfLaunchPerSecond: firstOfLaunch,
                loopbackHTTPSPerSecond: loopback, inProcessShareOfCeiling: inProcess / ceiling,
                inProcessFirstOfLaunchShareOfCeiling: firstOfLaunch / ceiling,
                attestations: inProcessCount + firstCount + loopbackCount)
        }
        if json {
            try printJSON(figures)
        } else {
            print(String(format: "attestation in-process, renewals (SQLite, 1 thread): %8.0f /s  = %.1f%% of the ceiling", figures.inProcessPerSecond, figures.inProcessShareOfCeiling * 100))
            print(String(format: "attestation in-process, first of a launch:         %10.0f /s  = %.1f%% of the ceiling", figures.inProcessFirstOfLaunchPerSecond, figures.inProcessFirstOfLaunchShareOfCeiling * 100))
            print(String(format: "attestation over HTTPS on loopback (1 client):     %10.0f /s", figures.loopbackHTTPSPerSecond))
            print("(\(figures.attestations) attestations, each with a fresh nonce and a new 24-hour certificate)")
        }
    }

    /// Sign-then-verify pairs per second with one P-256 key on this thread.
    static func signVerifyRate(seconds: Double) -> Double {
        let key = P256.Signing.PrivateKey()
        let message = Data(repeating: 7, count: 256)
        let clock = ContinuousClock()
        let start = clock.now
        var count = 0
        while (clock.now - start) < .seconds(seconds) {
            for _ in 0..<50 {
                let signature = try! key.signature(for: message)
                precondition(key.publicKey.isValidSignature(signature, for: message))
            }
            count += 50
        }
        return Double(count) / (clock.now - start).seconds
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
