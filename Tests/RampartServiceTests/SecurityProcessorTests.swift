import Crypto
import Foundation
import HTTPTypes
import SwiftASN1
@testable import RampartDevice
import RampartModel
import RampartPKI
@testable import RampartService
import RampartTestSupport
import Testing
import X509

/// One suite for both security processors — software DICE and a TPM 2.0 (swtpm, started
/// here) — from provisioning to an attestation the service accepts, and the attacks each
/// must withstand.
@Suite(.serialized) struct SecurityProcessorTests {
    /// Runs `body` with a processor configuration and a fresh device state directory.
    static func with<T: Sendable>(
        _ kind: SecurityProcessorKind, _ body: (DeviceState.ProcessorConfiguration, DeviceState) async throws -> T
    ) async throws -> T {
        let directory = try temporaryDirectory(prefix: "rampart-processor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = DeviceState(directory: "\(directory)/state")
        switch kind {
        case .softwareDICE:
            return try await body(.init(kind: .softwareDICE), state)
        case .tpm2:
            return try await SwtpmTestServer.with { tpm in try await body(.init(kind: .tpm2, tcti: tpm.tcti), state) }
        }
    }

    @Test(arguments: SecurityProcessorKind.allCases)
    func identityIsTheHashOfAKeyThatNeverChanges(kind: SecurityProcessorKind) async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try await Self.with(kind) { configuration, state in
            let record = try await state.provision(configuration, manufacturer: manufacturer)
            #expect(record.securityProcessor == kind)
            let certificate = try Certificate(pemEncoded: record.identityCertificate)
            #expect(DeviceID(publicKey: try #require(P256.Signing.PublicKey(certificate.publicKey))) == record.deviceId)
            #expect(manufacturer.certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
            #expect((record.endorsementKeyCertificate != nil) == (kind == .tpm2))

            // Opened again (a reboot): the same identity; the secret is not readable by others.
            let again = try state.openProcessor()
            #expect(DeviceID(publicKey: try P256.Signing.PublicKey(derRepresentation: try await again.identityPublicKey())) == record.deviceId)
            if kind == .softwareDICE {
                let mode = try FileManager.default.attributesOfItem(atPath: state.udsPath)[.posixPermissions] as? Int
                #expect(mode == 0o600)
            }
            // Provisioning twice would make a new device: refused.
            await #expect(throws: DeviceError.self) { _ = try await state.provision(configuration, manufacturer: manufacturer) }
        }
    }

    /// A TPM keeps the identity and the counters through a power cycle: swtpm stopped (its
    /// state kept, as a TPM's NV is) and started again.
    @Test func tpmIdentityAndCountersSurviveAPowerCycle() async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        let directory = try temporaryDirectory(prefix: "rampart-processor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = DeviceState(directory: "\(directory)/state")
        try await SwtpmTestServer.with { tpm in
            let record = try await state.provision(.init(kind: .tpm2, tcti: tpm.tcti), manufacturer: manufacturer)
            let counter = try await state.openProcessor().incrementCounter(.systemSoftware)
            await tpm.stop()
            try await tpm.run()
            let processor = try state.openProcessor()
            let key = try P256.Signing.PublicKey(derRepresentation: try await processor.identityPublicKey())
            #expect(DeviceID(publicKey: key) == record.deviceId)
            #expect(try await processor.counter(.systemSoftware) == counter)
            #expect(try await processor.incrementCounter(.systemSoftware) == counter + 1)
        }
    }

    @Test(arguments: SecurityProcessorKind.allCases)
    func countersOnlyGoUpAndSurviveARestart(kind: SecurityProcessorKind) async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try await Self.with(kind) { configuration, state in
            _ = try await state.provision(configuration, manufacturer: manufacturer)
            let processor = try state.openProcessor()
            let start = try await processor.counter(.systemSoftware)
            #expect(try await processor.incrementCounter(.systemSoftware) == start + 1)
            #expect(try await processor.incrementCounter(.systemSoftware) == start + 2)
            #expect(try await processor.counter(.applications) == 0)
            #expect(try await state.openProcessor().counter(.systemSoftware) == start + 2)
        }
    }

    /// A TPM starts a newly defined counter at the highest value any of its counters had; a
    /// component's counter must still read 1 after its first increment (or a first app install
    /// would set a floor no later version could pass), and the baseline that makes it so cannot
    /// be rewritten to let the counter go back.
    @Test func aLaterTPMCounterCountsFromItsOwnBaseline() async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try await Self.with(.tpm2) { configuration, state in
            _ = try await state.provision(configuration, manufacturer: manufacturer)
            let processor = try #require(try state.openProcessor() as? TPMSecurityProcessor)
            for _ in 0..<5 { _ = try await processor.incrementCounter(.systemSoftware) }
            #expect(try await processor.counter(.systemSoftware) == 5)
            let component = MonotonicCounter.component(ComponentID.random())
            #expect(try await processor.counter(component) == 0)
            #expect(try await processor.incrementCounter(component) == 1)
            #expect(try await processor.incrementCounter(component) == 2)
            #expect(try await state.openProcessor().counter(component) == 2)
            await #expect(throws: (any Error).self, "the TPM refuses a second write of the baseline") {
                try await processor.writeBaseline(component, 0)
            }
            #expect(try await processor.counter(component) == 2)
        }
    }

    /// Measured launch → evidence → the service's verdict, for both processors, and the
    /// attacks on the evidence each must refuse.
    @Test(arguments: SecurityProcessorKind.allCases)
    func measuredLaunchIsAttestedAndForgeriesAreRefused(kind: SecurityProcessorKind) async throws {
        try await Self.with(kind) { configuration, state in
            try await ServiceHarness.with(.sqlite, tpmVendors: SwtpmTestServer.localCACertificates) { harness in
                try await harness.test { client in
                    let record = try await state.provision(configuration, manufacturer: harness.manufacturer)
                    // What a launch measures: the runtime, its configuration, each installed image.
                    let runtimeFile = "\(state.directory)/rampartd"
                    try Data("rampartd 2.0.0 for \(kind)".utf8).write(to: URL(fileURLWithPath: runtimeFile))
                    try Data(#"{"server":"https://rampart.example"}"#.utf8).write(to: URL(fileURLWithPath: state.configPath))
                    try FileManager.default.createDirectory(atPath: state.imagesDirectory, withIntermediateDirectories: true)
                    try Data("wasm app".utf8).write(to: URL(fileURLWithPath: "\(state.imagesDirectory)/telemetry"))
                    let processor = try state.openProcessor()
                    let monitor = SecurityMonitor(processor: processor, softwareVersion: "2.0.0")
                    try await monitor.launch(state.launchComponents(runtime: runtimeFile))
                    let identity = try await monitor.identity()
                    #expect(identity.measurements.map(\.name) == ["rampartd", "config", "image:telemetry"])
                    let runtime = identity.measurements[0].sha256

                    _ = try await client.call(
                        .post, "/v1/os/releases", token: harness.operatorToken,
                        json: PublishReleaseRequest(version: "2.0.0", measurement: runtime))
                    let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                    // Claimed as the other kind of processor, the record is refused: its certificate does not fit.
                    var otherKind = record
                    otherKind.securityProcessor = kind == .tpm2 ? .softwareDICE : .tpm2
                    if kind == .tpm2 { otherKind.endorsementKeyCertificate = nil } else {
                        otherKind.endorsementKeyCertificate = try String(contentsOfFile: SwtpmTestServer.localCACertificates[0], encoding: .utf8)
                    }
                    let switched = try await client.call(
                        .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                        json: ClaimDeviceRequest(record: otherKind))
                    #expect(switched.error?.error == "device_not_genuine", "\(switched.text)")
                    if kind == .tpm2 {
                        // An EK certificate that is not one: the manufacturer-signed identity certificate in its place.
                        var fakeEK = record
                        fakeEK.endorsementKeyCertificate = record.identityCertificate
                        let refused = try await client.call(
                            .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                            json: ClaimDeviceRequest(record: fakeEK))
                        #expect(refused.error?.error == "device_not_genuine", "\(refused.text)")
                    }
                    let claimed = try await client.call(
                        .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                        json: ClaimDeviceRequest(record: record))
                    #expect(claimed.status == .created, "\(claimed.text)")

                    func nonce() async throws -> String {
                        try await client.call(
                            .post, "/v1/attestation/challenge", token: nil, json: AttestationChallengeRequest(deviceId: record.deviceId)
                        ).decode(AttestationChallenge.self).nonce
                    }
                    func submit(_ evidence: AttestationEvidence) async throws -> Answer {
                        try await client.call(.post, "/v1/attestation/evidence", token: nil, json: evidence)
                    }
                    let clientKey = Array(P256.Signing.PrivateKey().publicKey.derRepresentation)
                    let good = try await submit(try await monitor.evidence(nonce: try await nonce(), clientKey: clientKey))
                    #expect(good.status == .created, "\(good.text)")
                    #expect(try good.decode(AttestationResult.self).softwareVersion == "2.0.0")
                    if kind == .tpm2 {
                        #expect(try await monitor.evidence(nonce: try await nonce(), clientKey: clientKey).quote != nil)
                    }

                    // A log edited after signing: the signature (DICE) or the quote's qualifying data (TPM) no longer fits.
                    var edited = try await monitor.evidence(nonce: try await nonce(), clientKey: clientKey)
                    var payload = try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: edited.payload)!)
                    payload.measurements.removeLast()  // hide the image
                    edited.payload = try JSONEncoder.rampart.encode(payload).base64EncodedString()
                    #expect(try await submit(edited).error?.error == "evidence_signature_invalid")

                    // Evidence the security processor really signed, but over a log that is not what it measured.
                    var lying = try await monitor.evidence(nonce: try await nonce(), clientKey: clientKey)
                    var lie = try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: lying.payload)!)
                    lie.measurements = [lie.measurements[0]]
                    let lieBytes = try JSONEncoder.rampart.encode(lie)
                    if kind == .tpm2 {
                        // Quoted by the real TPM: its PCR holds all three measurements, the log claims one.
                        let signed = try await processor.sign(payload: lieBytes, softwareVersion: "2.0.0", securityVersion: 1, now: Date())
                        lying.payload = lieBytes.base64EncodedString()
                        lying.signature = Data(signed.signature).base64EncodedString()
                        lying.quote = signed.quote.map { Data($0).base64EncodedString() }
                        #expect(try await submit(lying).error?.error == "measurement_mismatch")
                    } else {
                        // DICE's Alias key binds the runtime only; a different runtime is caught by its certificate.
                        lie.measurements[0].sha256 = String(repeating: "a", count: 64)
                        let dice = SoftwareDICE(uds: try UniqueDeviceSecret.load(from: state.udsPath))
                        let bytes = try JSONEncoder.rampart.encode(lie)
                        lying.payload = bytes.base64EncodedString()
                        lying.signature = try dice.aliasKey(measurement: [UInt8](hexString: runtime)!).signature(for: bytes)
                            .derRepresentation.base64EncodedString()
                        #expect(try await submit(lying).error?.error == "measurement_mismatch")
                    }

                    // A quote or signature from another device of the same kind, for this device's ID.
                    let otherState = DeviceState(directory: "\(state.directory)-other")
                    defer { try? FileManager.default.removeItem(atPath: otherState.directory) }
                    func impostorEvidence(_ configuration: DeviceState.ProcessorConfiguration) async throws -> AttestationEvidence {
                        _ = try await otherState.provision(configuration, manufacturer: harness.manufacturer)
                        let impostor = SecurityMonitor(processor: try otherState.openProcessor(), softwareVersion: "2.0.0")
                        try await impostor.launch(runtime: [UInt8](hexString: runtime)!)
                        var stolen = try await impostor.evidence(nonce: try await nonce(), clientKey: clientKey)
                        var stolenPayload = try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: stolen.payload)!)
                        stolenPayload.deviceId = record.deviceId
                        stolen.payload = try JSONEncoder.rampart.encode(stolenPayload).base64EncodedString()
                        return stolen
                    }
                    switch kind {
                    case .softwareDICE:
                        let stolen = try await impostorEvidence(.init(kind: .softwareDICE))
                        #expect(try await submit(stolen).error?.error == "device_not_genuine")
                    case .tpm2:
                        try await SwtpmTestServer.with { otherTPM in
                            let stolen = try await impostorEvidence(.init(kind: .tpm2, tcti: otherTPM.tcti))
                            #expect(try await submit(stolen).error?.error == "evidence_signature_invalid")
                        }
                    }
                }
            }
        }
    }

    /// The runtime reaches the monitor only through its socket: identity, evidence,
    /// counters — and a clear error for anything else.
    @Test func monitorServesItsNarrowInterfaceOverAUnixSocket() async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try await Self.with(.softwareDICE) { configuration, state in
            let record = try await state.provision(configuration, manufacturer: manufacturer)
            let monitor = SecurityMonitor(processor: try state.openProcessor(), softwareVersion: "1.0.0")
            try await monitor.launch(runtime: TestDevice.runtime)
            let socket = state.socketPath
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (ready, readyContinuation) = AsyncStream.makeStream(of: Void.self)
                group.addTask { try await MonitorServer.run(monitor, socketPath: socket) { readyContinuation.yield() } }
                for await _ in ready { break }
                let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
                #expect(mode == 0o660)

                let client = MonitorClient(socketPath: socket)
                let identity = try await client.identity()
                #expect(identity.deviceId == record.deviceId)
                #expect(identity.measurements.map(\.sha256) == [TestDevice.runtime.hexString])
                let before = try await client.counter(.systemSoftware)
                #expect(try await client.incrementCounter(.systemSoftware) == before + 1)
                let key = P256.Signing.PrivateKey()
                let nonce = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
                let evidence = try await client.evidence(nonce: nonce, clientKey: Array(key.publicKey.derRepresentation))
                let payload = try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: evidence.payload)!)
                #expect(payload.nonce == nonce)
                #expect(payload.counters["system-software"] == before + 1)
                // The alias certificate is in the evidence; no private key ever crosses the socket.
                #expect(!evidence.payload.contains("PRIVATE"))
                #expect(evidence.certificateChain.allSatisfy { !$0.contains("PRIVATE") })

                // Bad requests get an error, not a crash; the monitor keeps serving.
                await #expect(throws: DeviceError(code: "invalid_nonce", message: "")) {
                    _ = try await client.evidence(nonce: "short", clientKey: Array(key.publicKey.derRepresentation))
                }
                await #expect(throws: DeviceError(code: "invalid_client_key", message: "")) {
                    _ = try await client.evidence(nonce: nonce, clientKey: [1, 2, 3])
                }
                #expect(try await client.identity().deviceId == record.deviceId)
                group.cancelAll()
            }
            // With the monitor gone, the runtime is told so.
            await #expect(throws: DeviceError(code: "monitor_unreachable", message: "")) {
                _ = try await MonitorClient(socketPath: socket + ".absent").identity()
            }
        }
    }
}
