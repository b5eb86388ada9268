import Crypto
import Foundation
import HTTPTypes
import RampartDevice
import RampartModel
import RampartPKI
@testable import RampartService
import RampartTestSupport
import SwiftASN1
import Testing
import X509

/// Device Authentication and Attestation with a software DICE device: the good path, and
/// every attack refused with its own code.
@Suite struct AttestationTests {
    static var runtime: SHA256Digest { SHA256.hash(data: Data("rampartd 1.0.0 build".utf8)) }

    /// A provisioned device: its DICE identity and the manufacturer-endorsed DeviceID certificate.
    struct Device {
        let dice: SoftwareDICE
        let certificate: Certificate
        var id: DeviceID { dice.deviceID }

        init(manufacturer: CertificateAuthority) throws {
            var generator = SystemRandomNumberGenerator()
            dice = SoftwareDICE(uds: try UniqueDeviceSecret(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }))
            certificate = try dice.deviceIDCertificate(endorsedBy: manufacturer, now: Date())
        }

        func evidence(nonce: String, runtime: SHA256Digest = AttestationTests.runtime) throws -> AttestationEvidence {
            try AttestationClient.evidence(
                dice: dice, deviceIDCertificate: certificate, runtimeMeasurement: runtime, softwareVersion: "1.0.0",
                securityVersion: 1, nonce: nonce, counters: ["rollback": 1], now: Date())
        }
    }

    func challenge(_ client: RouterClient, _ device: DeviceID) async throws -> String {
        let answer = try await client.call(
            .post, "/v1/attestation/challenge", token: nil, json: AttestationChallengeRequest(deviceId: device))
        #expect(answer.status == .created)
        return try answer.decode(AttestationChallenge.self).nonce
    }

    @Test(arguments: engines)
    func genuineClaimedDeviceGetsA24HourClientCertificate(engine: DatabaseEngine) async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try await ServiceHarness.with(engine, manufacturer: manufacturer.certificate) { harness in
            try await harness.test { client in
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let device = try Device(manufacturer: manufacturer)
                _ = try await client.call(
                    .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                    json: ClaimDeviceRequest(deviceId: device.id))
                let nonce = try await challenge(client, device.id)
                let answer = try await client.call(
                    .post, "/v1/attestation/evidence", token: nil, json: try device.evidence(nonce: nonce))
                #expect(answer.status == .created, "\(answer.text)")
                let result = try answer.decode(AttestationResult.self)
                #expect(result.tenantId == tenant.tenant.id)
                #expect(result.softwareVersion == "1.0.0")

                let issued = try Certificate(pemEncoded: result.certificateChain[0])
                #expect(issued.subject.description.contains("CN=\(device.id.hex)"))
                #expect(issued.notValidAfter.timeIntervalSince(issued.notValidBefore) == 24 * 3600 + 300)
                #expect(try issued.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
                let tcb = try DiceTcbInfo(try #require(issued.extensions.first { $0.oid == DiceTcbInfo.oid }))
                #expect(tcb.fwids == [Array(Self.runtime)])
                #expect(tcb.version == "1.0.0")
                // A verifier we did not write accepts it as a TLS client certificate of the tenant's chain.
                let chain = try result.certificateChain.map { try Certificate(pemEncoded: $0) } + [harness.api.pki.root.certificate]
                #expect(try await OpenSSL.verify(chain, purpose: "sslclient"))

                let shown = try await client.call(.get, "/v1/tenants/\(tenant.tenant.id)/devices/\(device.id)", token: tenant.token.secret)
                    .decode(DeviceDocument.self)
                #expect(shown.lastAttestation?.softwareVersion == "1.0.0")
                #expect(shown.lastAttestation?.certificateExpiresAt == issued.notValidAfter)

                // The same evidence again: the nonce is spent.
                let replay = try await client.call(.post, "/v1/attestation/evidence", token: nil, json: try device.evidence(nonce: nonce))
                #expect(replay.status == .forbidden)
                #expect(replay.error?.error == "nonce_replayed")
            }
        }
    }

    @Test func attacksAreRefusedEachWithItsOwnCode() async throws {
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        let clock = TestClock()
        try await ServiceHarness.with(.sqlite, clock: clock, manufacturer: manufacturer.certificate) { harness in
            try await harness.test { client in
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                func claim(_ device: Device) async throws {
                    let claimed = try await client.call(
                        .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                        json: ClaimDeviceRequest(deviceId: device.id))
                    #expect(claimed.status == .created)
                }
                func submit(_ evidence: AttestationEvidence) async throws -> String? {
                    try await client.call(.post, "/v1/attestation/evidence", token: nil, json: evidence).error?.error
                }
                let device = try Device(manufacturer: manufacturer)
                try await claim(device)

                // Expired nonce.
                let stale = try await challenge(client, device.id)
                clock.advance(days: 61.0 / 86_400)
                #expect(try await submit(try device.evidence(nonce: stale)) == "nonce_expired")

                // A nonce issued to another device, or never issued.
                let other = try Device(manufacturer: manufacturer)
                let theirs = try await challenge(client, other.id)
                #expect(try await submit(try device.evidence(nonce: theirs)) == "nonce_unknown")
                #expect(try await submit(try device.evidence(nonce: Data(count: 32).base64EncodedString())) == "nonce_unknown")

                // Evidence signed by another key than the certified Alias key.
                var forged = try device.evidence(nonce: try await challenge(client, device.id))
                let stranger = P256.Signing.PrivateKey()
                forged.signature = try stranger.signature(for: Data(base64Encoded: forged.payload)!).derRepresentation.base64EncodedString()
                #expect(try await submit(forged) == "evidence_signature_invalid")

                // A tampered measurement: the log claims other software than the DeviceID key certified.
                var tampered = try device.evidence(nonce: try await challenge(client, device.id))
                var payload = try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: tampered.payload)!)
                payload.measurements[0].sha256 = String(repeating: "0", count: 64)
                let bytes = try JSONEncoder.rampart.encode(payload)
                tampered.payload = bytes.base64EncodedString()
                tampered.signature = try device.dice.aliasKey(measurement: Self.runtime).signature(for: bytes)
                    .derRepresentation.base64EncodedString()
                #expect(try await submit(tampered) == "measurement_mismatch")

                // A device from a manufacturer the service does not trust.
                let counterfeit = try Device(manufacturer: try CertificateAuthority.makeRoot(commonName: "Counterfeit", now: Date()))
                try await claim(counterfeit)
                #expect(try await submit(try counterfeit.evidence(nonce: try await challenge(client, counterfeit.id))) == "device_not_genuine")

                // Someone else's DeviceID certificate with my device ID.
                var borrowed = try other.evidence(nonce: try await challenge(client, device.id))
                var claimedPayload = try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: borrowed.payload)!)
                claimedPayload.deviceId = device.id
                let claimedBytes = try JSONEncoder.rampart.encode(claimedPayload)
                borrowed.payload = claimedBytes.base64EncodedString()
                borrowed.signature = try other.dice.aliasKey(measurement: Self.runtime).signature(for: claimedBytes)
                    .derRepresentation.base64EncodedString()
                #expect(try await submit(borrowed) == "device_id_mismatch")

                // A genuine device nobody claimed.
                #expect(try await submit(try other.evidence(nonce: try await challenge(client, other.id))) == "device_not_claimed")

                // Unreadable evidence is refused, not a 500.
                let garbage = AttestationEvidence(payload: "???", signature: "", certificateChain: [])
                let answer = try await client.call(.post, "/v1/attestation/evidence", token: nil, json: garbage)
                #expect(answer.status == .forbidden)
                #expect(answer.error?.error == "evidence_malformed")

                // And each refusal is counted by its code.
                let metrics = try await client.call(.get, "/metrics", token: nil).text
                for code in [
                    "nonce_expired", "nonce_unknown", "evidence_signature_invalid", "measurement_mismatch",
                    "device_not_genuine", "device_id_mismatch", "device_not_claimed",
                ] {
                    #expect(metrics.contains("rampart_refusals_total{code=\"\(code)\"}"), "\(code) not counted")
                }
            }
        }
    }
}
