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
            Ceiling: swift-crypto P-256 sign + verify pairs per second on one thread, measured in \
            ten turns with the in-process figures, so a slow spell of the machine slows all of \
            them alike. An attestation costs the service one verification (the evidence's \
            signature; the Alias certificate's too, the first time the service sees that \
            certificate) and one signature (the device certificate), plus storage. In-process: the service's own challenge and attest calls on \
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

    /// The ceiling and the two in-process figures are measured in turns, this many rounds
    /// of `seconds / rounds` each, so that a slow spell of a shared machine slows all three.
    static let rounds = 10

    func run() async throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        let seconds = seconds
        let slice = seconds / Double(Self.rounds)
        let figures = try await BenchFleet.with(devices: 1) { bench -> Figures in
            let local = bench.local
            let root = bench.rootPEM
            let device = bench.devices[0]
            let clientKey = Array(P256.Signing.PrivateKey().publicKey.derRepresentation)
            let deviceID = device.record.deviceId
            let clock = ContinuousClock()

            /// Attestations in `seconds` of the service's time: `launch` (not timed) gives the
            /// device's monitor for the next one; the challenge and the attestation are
            /// timed, building the evidence between them is not.
            func measure(
                seconds: Double, launch: () async throws -> SecurityMonitor, challenge: () async throws -> AttestationChallenge,
                attest: (AttestationEvidence) async throws -> Void
            ) async throws -> Measured {
                var count = 0
                var spent: Duration = .zero
                while spent < .seconds(seconds) {
                    let monitor = try await launch()
                    let started = clock.now
                    let nonce = try await challenge().nonce
                    spent += clock.now - started
                    let built = try await monitor.evidence(nonce: nonce, clientKey: clientKey)
                    let attestStarted = clock.now
                    try await attest(built)
                    spent += clock.now - attestStarted
                    count += 1
                }
                return Measured(count: count, spent: spent)
            }

            let serviceChallenge = { try await local.api.challenge(for: deviceID) }
            let serviceAttest = { (evidence: AttestationEvidence) in _ = try await local.api.attest(evidence) }
            let newLaunch = {
                let launched = SecurityMonitor(processor: device.processor, softwareVersion: bench.fleet.version)
                try await launched.launch(runtime: bench.fleet.runtime)
                return launched
            }
            var pairs = Measured(), renewals = Measured(), firsts = Measured()
            for _ in 0..<Self.rounds {
                pairs += Self.signVerifyPairs(seconds: slice)
                // Renewals within one launch: the Alias certificate is one the service knows.
                renewals += try await measure(
                    seconds: slice, launch: { device.monitor }, challenge: serviceChallenge, attest: serviceAttest)
                // A new launch before each attestation: what a device's first attestation after
                // boot, and every attestation of a renewal storm, costs the service.
                firsts += try await measure(seconds: slice, launch: newLaunch, challenge: serviceChallenge, attest: serviceAttest)
            }
            let ceiling = pairs.perSecond
            if !json { print(String(format: "raw P-256 sign+verify (swift-crypto, 1 thread):   %10.0f /s", ceiling)) }
            let loopback = try await APIClient.with(server: local.url, token: nil, trustRootPEM: root) { client in
                try await measure(
                    seconds: seconds, launch: { device.monitor },
                    challenge: { try await client.attestationChallenge(device: deviceID) },
                    attest: { _ = try await client.submitEvidence($0) })
            }
            return Figures(
                signVerifyPerSecond: ceiling, inProcessPerSecond: renewals.perSecond,
                inProcessFirstOfLaunchPerSecond: firsts.perSecond, loopbackHTTPSPerSecond: loopback.perSecond,
                inProcessShareOfCeiling: renewals.perSecond / ceiling, inProcessFirstOfLaunchShareOfCeiling: firsts.perSecond / ceiling,
                attestations: renewals.count + firsts.count + loopback.count)
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

    /// Sign-then-verify pairs with one P-256 key on this thread, for `seconds`.
    static func signVerifyPairs(seconds: Double) -> Measured {
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
        return Measured(count: count, spent: clock.now - start)
    }

    /// Operations counted over time spent on them.
    struct Measured {
        var count = 0
        var spent: Duration = .zero
        var perSecond: Double { Double(count) / spent.seconds }

        static func += (total: inout Measured, part: Measured) {
            total.count += part.count
            total.spent += part.spent
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
