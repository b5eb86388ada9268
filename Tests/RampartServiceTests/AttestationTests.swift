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

/// Device Authentication and Attestation with software-DICE devices: genuineness at claim
/// time, reference values, the good path, and every attack refused with its own code.
@Suite struct AttestationTests {
    func challenge(_ client: RouterClient, _ device: DeviceID) async throws -> String {
        let answer = try await client.call(
            .post, "/v1/attestation/challenge", token: nil, json: AttestationChallengeRequest(deviceId: device))
        #expect(answer.status == .created)
        return try answer.decode(AttestationChallenge.self).nonce
    }

    func publish(_ client: RouterClient, _ harness: ServiceHarness, _ release: PublishReleaseRequest = TestDevice.release)
        async throws
    {
        let answer = try await client.call(.post, "/v1/os/releases", token: harness.operatorToken, json: release)
        #expect(answer.status == .created, "\(answer.text)")
    }

    @Test(arguments: engines)
    func genuineClaimedDeviceGetsA24HourClientCertificate(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                try await publish(client, harness)
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let device = try await harness.device()
                let claimed = try await client.call(
                    .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                    json: ClaimDeviceRequest(record: device.record))
                #expect(claimed.status == .created)
                #expect(try claimed.decode(DeviceDocument.self).securityProcessor == .softwareDICE)
                let nonce = try await challenge(client, device.id)
                let clientKey = P256.Signing.PrivateKey()
                let answer = try await client.call(
                    .post, "/v1/attestation/evidence", token: nil, json: try await device.evidence(nonce: nonce, clientKey: clientKey))
                #expect(answer.status == .created, "\(answer.text)")
                let result = try answer.decode(AttestationResult.self)
                #expect(result.tenantId == tenant.tenant.id)
                #expect(result.softwareVersion == TestDevice.version)

                let issued = try Certificate(pemEncoded: result.certificateChain[0])
                #expect(issued.publicKey == Certificate.PublicKey(clientKey.publicKey), "the certificate is for the device's client key")
                #expect(issued.subject.description.contains("CN=\(device.id.hex)"))
                #expect(issued.notValidAfter.timeIntervalSince(issued.notValidBefore) == 24 * 3600 + 300)
                #expect(try issued.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
                let tcb = try DiceTcbInfo(try #require(issued.extensions.first { $0.oid == DiceTcbInfo.oid }))
                #expect(tcb.fwids.first == TestDevice.runtime)
                #expect(tcb.fwids.last?.hexString == result.measurementDigest)
                #expect(tcb.version == TestDevice.version)
                // A verifier we did not write accepts it as a TLS client certificate of the tenant's chain.
                let chain = try result.certificateChain.map { try Certificate(pemEncoded: $0) } + [harness.api.pki.root.certificate]
                #expect(try await OpenSSL.verify(chain, purpose: "sslclient"))
                // And shows what it holds: the 24-hour lifetime, client authentication, the attestation extension.
                let text = try await OpenSSL.text(issued)
                #expect(text.contains("TLS Web Client Authentication"), "\(text)")
                #expect(text.contains("Digital Signature"))
                #expect(text.contains("2.23.133.5.4.1"))
                #expect(text.contains("CN = \(device.id.hex)") || text.contains("CN=\(device.id.hex)"))
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "GMT")
                formatter.dateFormat = "MMM d HH:mm:ss yyyy 'GMT'"
                let dates = text.matches(of: /Not (?:Before|After) ?: +([A-Za-z]+ +\d+ [\d:]+ \d+ GMT)/).compactMap {
                    formatter.date(from: String($0.1).replacingOccurrences(of: "  ", with: " "))
                }
                #expect(dates.count == 2 && dates[1].timeIntervalSince(dates[0]) == 24 * 3600 + 300, "\(dates)")

                let shown = try await client.call(.get, "/v1/tenants/\(tenant.tenant.id)/devices/\(device.id)", token: tenant.token.secret)
                    .decode(DeviceDocument.self)
                #expect(shown.lastAttestation?.softwareVersion == TestDevice.version)
                #expect(shown.lastAttestation?.certificateExpiresAt == issued.notValidAfter)

                // The same evidence again: the nonce is spent.
                let replay = try await client.call(.post, "/v1/attestation/evidence", token: nil, json: try await device.evidence(nonce: nonce))
                #expect(replay.status == .forbidden)
                #expect(replay.error?.error == "nonce_replayed")
                #expect(try await client.call(.get, "/metrics", token: nil).text.contains("rampart_refusals_total{code=\"nonce_replayed\"}"))

                // Refused evidence spends its nonce too, on either engine: the good evidence after it is a replay.
                let another = try await challenge(client, device.id)
                var broken = try await device.evidence(nonce: another)
                broken.signature = Data(count: 8).base64EncodedString()
                let refused = try await client.call(.post, "/v1/attestation/evidence", token: nil, json: broken)
                #expect(refused.error?.error == "evidence_malformed")
                let after = try await client.call(.post, "/v1/attestation/evidence", token: nil, json: try await device.evidence(nonce: another))
                #expect(after.error?.error == "nonce_replayed")
            }
        }
    }

    /// `rampart device claim` checks the provisioning record: only devices endorsed by a
    /// trusted manufacturer, whose ID is their key, can be claimed.
    @Test func claimRefusesDevicesThatAreNotGenuine() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                func claim(_ request: ClaimDeviceRequest) async throws -> Answer {
                    try await client.call(.post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret, json: request)
                }
                // Made by a manufacturer the service does not trust.
                let counterfeiter = try CertificateAuthority.makeRoot(commonName: "Counterfeit", now: Date())
                let counterfeit = try await TestDevice.make(manufacturer: counterfeiter)
                let fake = try await claim(ClaimDeviceRequest(record: counterfeit.record))
                #expect(fake.status == .forbidden)
                #expect(fake.error?.error == "device_not_genuine")

                // A genuine certificate presented for another device ID.
                let genuine = try await harness.device()
                let other = try await harness.device()
                var borrowed = genuine.record
                borrowed.deviceId = other.id
                #expect(try await claim(ClaimDeviceRequest(record: borrowed)).error?.error == "device_id_mismatch")

                // A certificate whose signature was tampered with.
                var tampered = genuine.record
                var der = try Certificate(pemEncoded: tampered.identityCertificate).derBytes
                der[der.count - 5] ^= 0x01
                tampered.identityCertificate = try Certificate(derEncoded: der).pemString
                #expect(try await claim(ClaimDeviceRequest(record: tampered)).error?.error == "device_not_genuine")

                // A TPM device must bring its endorsement-key certificate.
                var noEK = genuine.record
                noEK.securityProcessor = .tpm2
                #expect(try await claim(ClaimDeviceRequest(record: noEK)).error?.error == "device_not_genuine")

                // Not a certificate at all.
                var garbage = genuine.record
                garbage.identityCertificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                let unreadable = try await claim(ClaimDeviceRequest(record: garbage))
                #expect(unreadable.status == .forbidden)
                #expect(unreadable.error?.error == "device_not_genuine")

                // Nothing of the above was stored; the genuine record is accepted.
                let devices = try await client.call(.get, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret)
                    .decode(ListDocument<DeviceDocument>.self).items
                #expect(devices.isEmpty)
                #expect(try await claim(ClaimDeviceRequest(record: genuine.record)).status == .created)
                // Refusals are audited.
                let audit = try await client.call(.get, "/v1/tenants/\(tenant.tenant.id)/audit", token: tenant.token.secret)
                    .decode(ListDocument<AuditEntryDocument>.self).items
                #expect(audit.contains { $0.action == "device.claim" && $0.outcome == "device_not_genuine" })
                let metrics = try await client.call(.get, "/metrics", token: nil).text
                for code in ["device_not_genuine", "device_id_mismatch"] {
                    #expect(metrics.contains("rampart_refusals_total{code=\"\(code)\"}"), "\(code) not counted")
                }
            }
        }
    }

    /// Reference values: only published, unrevoked releases are attested; a device running
    /// anything else is told to update.
    @Test func unknownAndRevokedSoftwareIsRefusedWithAnUpdateCode() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let device = try await harness.device()
                _ = try await client.call(
                    .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                    json: ClaimDeviceRequest(record: device.record))
                func attest() async throws -> Answer {
                    try await client.call(
                        .post, "/v1/attestation/evidence", token: nil,
                        json: try await device.evidence(nonce: try await challenge(client, device.id)))
                }
                // Nothing published yet.
                let unknown = try await attest()
                #expect(unknown.error?.error == "software_unknown")
                #expect(UpdateRequired.codes.contains(unknown.error?.error ?? ""))

                // The same measurement published under another version is not this release.
                try await publish(client, harness, PublishReleaseRequest(version: "0.9.0", measurement: TestDevice.runtime.hexString))
                #expect(try await attest().error?.error == "software_unknown")
                #expect(try await client.call(.post, "/v1/os/releases/0.9.0/revoke", token: harness.operatorToken, json: RevokeReleaseRequest(reason: "wrong")).status == .ok)

                // Only the operator publishes and revokes.
                let byTenant = try await client.call(.post, "/v1/os/releases", token: tenant.token.secret, json: TestDevice.release)
                #expect(byTenant.status == .forbidden)
                let releasesBefore = try await client.call(.get, "/v1/os/releases", token: tenant.token.secret)
                    .decode(ListDocument<SystemSoftwareRelease>.self).items
                #expect(releasesBefore.map(\.version) == ["0.9.0"])

                // A measurement that is already a release cannot be published again.
                let duplicate = try await client.call(
                    .post, "/v1/os/releases", token: harness.operatorToken,
                    json: PublishReleaseRequest(version: "1.0.0", measurement: TestDevice.runtime.hexString))
                #expect(duplicate.error?.error == "release_exists")
                let badDigest = try await client.call(
                    .post, "/v1/os/releases", token: harness.operatorToken,
                    json: PublishReleaseRequest(version: "1.0.0", measurement: "not-a-digest"))
                #expect(badDigest.status == .badRequest)
            }
        }
        // A fresh service: publish, attest, revoke, refused.
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                try await publish(client, harness)
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let device = try await harness.device()
                _ = try await client.call(
                    .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                    json: ClaimDeviceRequest(record: device.record))
                let good = try await client.call(
                    .post, "/v1/attestation/evidence", token: nil, json: try await device.evidence(nonce: try await challenge(client, device.id)))
                #expect(good.status == .created)
                let revoked = try await client.call(
                    .post, "/v1/os/releases/\(TestDevice.version)/revoke", token: harness.operatorToken,
                    json: RevokeReleaseRequest(reason: "CVE-2026-0001"))
                #expect(revoked.status == .ok)
                #expect(try revoked.decode(SystemSoftwareRelease.self).revocationReason == "CVE-2026-0001")
                let again = try await client.call(
                    .post, "/v1/os/releases/\(TestDevice.version)/revoke", token: harness.operatorToken,
                    json: RevokeReleaseRequest(reason: "twice"))
                #expect(again.error?.error == "release_revoked")
                let refused = try await client.call(
                    .post, "/v1/attestation/evidence", token: nil, json: try await device.evidence(nonce: try await challenge(client, device.id)))
                #expect(refused.status == .forbidden)
                #expect(refused.error?.error == "software_revoked")
                #expect(refused.error?.message.contains("CVE-2026-0001") == true)
                #expect(refused.error?.message.contains("must update") == true)
                #expect(try await client.call(.get, "/metrics", token: nil).text.contains("rampart_refusals_total{code=\"software_revoked\"}"))
            }
        }
    }

    @Test func attacksAreRefusedEachWithItsOwnCode() async throws {
        let clock = TestClock()
        try await ServiceHarness.with(.sqlite, clock: clock) { harness in
            try await harness.test { client in
                try await publish(client, harness)
                let tenant = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                func claim(_ device: TestDevice) async throws {
                    let claimed = try await client.call(
                        .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                        json: ClaimDeviceRequest(record: device.record))
                    #expect(claimed.status == .created)
                }
                func submit(_ evidence: AttestationEvidence) async throws -> String? {
                    try await client.call(.post, "/v1/attestation/evidence", token: nil, json: evidence).error?.error
                }
                /// Re-signs a payload with `key`, as an attacker holding that key would.
                func resigned(_ evidence: AttestationEvidence, _ payload: AttestationPayload, by key: P256.Signing.PrivateKey) throws
                    -> AttestationEvidence
                {
                    var forged = evidence
                    let bytes = try JSONEncoder.rampart.encode(payload)
                    forged.payload = bytes.base64EncodedString()
                    forged.signature = try key.signature(for: bytes).derRepresentation.base64EncodedString()
                    return forged
                }
                func payload(of evidence: AttestationEvidence) throws -> AttestationPayload {
                    try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(base64Encoded: evidence.payload)!)
                }
                let device = try await harness.device()
                try await claim(device)

                // Expired nonce.
                let stale = try await challenge(client, device.id)
                clock.advance(days: 61.0 / 86_400)
                #expect(try await submit(try await device.evidence(nonce: stale)) == "nonce_expired")

                // A nonce issued to another device, or never issued.
                let other = try await harness.device()
                try await claim(other)
                let theirs = try await challenge(client, other.id)
                #expect(try await submit(try await device.evidence(nonce: theirs)) == "nonce_unknown")
                #expect(try await submit(try await device.evidence(nonce: Data(count: 32).base64EncodedString())) == "nonce_unknown")

                // Evidence that fails still spends its nonce: good evidence cannot follow it.
                let once = try await challenge(client, device.id)
                let first = try await device.evidence(nonce: once)
                #expect(try await submit(try resigned(first, try payload(of: first), by: P256.Signing.PrivateKey())) == "evidence_signature_invalid")
                #expect(try await submit(try await device.evidence(nonce: once)) == "nonce_replayed")

                // Run twice: with Alias certificates the service has never seen, then once both
                // devices attested, when it knows their (per-launch) Alias certificates already.
                for round in ["unknown Alias", "known Alias"] {
                    // Evidence signed by another key than the certified Alias key.
                    let honest = try await device.evidence(nonce: try await challenge(client, device.id))
                    #expect(
                        try await submit(try resigned(honest, try payload(of: honest), by: P256.Signing.PrivateKey()))
                            == "evidence_signature_invalid", "\(round)")

                    // A tampered measurement: the log claims other software than the DeviceID key certified.
                    let measured = try await device.evidence(nonce: try await challenge(client, device.id))
                    var changed = try payload(of: measured)
                    changed.measurements[0].sha256 = String(repeating: "0", count: 64)
                    #expect(
                        try await submit(try resigned(measured, changed, by: device.dice.aliasKey(measurement: TestDevice.runtime)))
                            == "measurement_mismatch", "\(round)")

                    // Another genuine device's Alias certificate and key, speaking for my device ID.
                    let borrowedFrom = try await other.evidence(nonce: try await challenge(client, device.id))
                    #expect(borrowedFrom.certificateChain != measured.certificateChain)
                    var speaking = try payload(of: borrowedFrom)
                    speaking.deviceId = device.id
                    #expect(
                        try await submit(try resigned(borrowedFrom, speaking, by: other.dice.aliasKey(measurement: TestDevice.runtime)))
                            == "device_not_genuine", "\(round)")

                    for genuine in [device, other] {
                        #expect(try await submit(try await genuine.evidence(nonce: try await challenge(client, genuine.id))) == nil)
                    }
                }

                // An Alias certificate naming my DeviceID certificate as issuer, signed by another key.
                let forger = P256.Signing.PrivateKey()
                let aliasKey = P256.Signing.PrivateKey()
                let identity = try Certificate(pemEncoded: device.record.identityCertificate)
                let fakeAlias = try Certificate(
                    version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(aliasKey.publicKey),
                    notValidBefore: Date().addingTimeInterval(-60), notValidAfter: Date().addingTimeInterval(3600),
                    issuer: identity.subject, subject: identity.subject,
                    extensions: try Certificate.Extensions {
                        try DiceTcbInfo(
                            vendor: "Rampart", model: "rampartd", version: TestDevice.version, securityVersion: 1, layer: 1,
                            fwids: [TestDevice.runtime]
                        ).certificateExtension()
                    }, issuerPrivateKey: .init(forger))
                var posing = try await device.evidence(nonce: try await challenge(client, device.id))
                posing.certificateChain = [fakeAlias.pemString]
                #expect(try await submit(try resigned(posing, try payload(of: posing), by: aliasKey)) == "device_not_genuine")

                // An Alias certificate padded past 4 KiB is not read (nor remembered); the same
                // padding within the limit is read as PEM allows.
                for (padding, refusal) in [(100, nil), (4096, "evidence_malformed")] as [(Int, String?)] {
                    var padded = try await device.evidence(nonce: try await challenge(client, device.id))
                    padded.certificateChain = [padded.certificateChain[0] + String(repeating: " ", count: padding)]
                    #expect(try await submit(padded) == refusal, "\(padding) bytes of padding")
                }

                // A client key in a form the certificate could not carry as sent: the point
                // compressed, though the Alias key signed it.
                let squeezing = try await device.evidence(nonce: try await challenge(client, device.id))
                var squeezed = try payload(of: squeezing)
                let compressedPrefix: [UInt8] = [
                    0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
                ]
                squeezed.clientKey = Data(compressedPrefix + P256.Signing.PrivateKey().publicKey.compressedRepresentation)
                    .base64EncodedString()
                #expect(
                    try await submit(try resigned(squeezing, squeezed, by: device.dice.aliasKey(measurement: TestDevice.runtime)))
                        == "evidence_malformed")

                // A genuine device nobody claimed gets no nonce, and evidence without one is refused.
                let unclaimed = try await harness.device()
                let noNonce = try await client.call(
                    .post, "/v1/attestation/challenge", token: nil, json: AttestationChallengeRequest(deviceId: unclaimed.id))
                #expect(noNonce.status == .forbidden)
                #expect(noNonce.error?.error == "device_not_claimed")
                #expect(try await submit(try await unclaimed.evidence(nonce: theirs)) == "nonce_unknown")

                // A device whose counters say it installed newer system software than it now runs: a rollback.
                let rolledBack = try await harness.device()
                try await claim(rolledBack)
                for _ in 0..<3 { _ = try await rolledBack.monitor.incrementCounter(.systemSoftware) }
                #expect(try await submit(try await rolledBack.evidence(nonce: try await challenge(client, rolledBack.id))) == "software_rolled_back")

                // A device running software nobody published.
                let modified = try await TestDevice.make(manufacturer: harness.manufacturer, runtime: Array(SHA256.hash(data: Data("patched".utf8))))
                try await claim(modified)
                #expect(try await submit(try await modified.evidence(nonce: try await challenge(client, modified.id))) == "software_unknown")

                // Unreadable evidence is refused, not a 500.
                let garbage = AttestationEvidence(payload: "???", signature: "", certificateChain: [])
                let answer = try await client.call(.post, "/v1/attestation/evidence", token: nil, json: garbage)
                #expect(answer.status == .forbidden)
                #expect(answer.error?.error == "evidence_malformed")

                // And each refusal is counted by its code.
                let metrics = try await client.call(.get, "/metrics", token: nil).text
                for code in [
                    "nonce_expired", "nonce_unknown", "evidence_signature_invalid", "measurement_mismatch",
                    "device_not_genuine", "device_not_claimed", "software_unknown", "software_rolled_back",
                ] {
                    #expect(metrics.contains("rampart_refusals_total{code=\"\(code)\"}"), "\(code) not counted")
                }
            }
        }
    }

    /// The cache of verified certificates stays within two generations of its capacity and
    /// keeps what is used: a hit in the old generation survives the next turnover.
    @Test func attestationCacheIsBoundedAndKeepsWhatIsUsed() {
        let cache = GenerationalCache<Int>(capacity: 2)
        func key(_ text: String) -> AttestationCache.Key { AttestationCache.key(text) }
        cache.insert(1, for: key("a"))
        cache.insert(2, for: key("b"))
        cache.insert(3, for: key("c"))  // a and b move to the old generation
        #expect(cache.value(for: key("a")) == 1)  // a comes back to the new one
        cache.insert(4, for: key("d"))  // the new one is full: b is dropped
        #expect(cache.value(for: key("b")) == nil)
        #expect(cache.value(for: key("a")) == 1)
        #expect(cache.value(for: key("c")) == 3)
        #expect(cache.value(for: key("d")) == 4)
        for index in 0..<100 { cache.insert(index, for: key("k\(index)")) }
        #expect(cache.count <= 4)
        // An Alias certificate's key depends on the identity it was checked against.
        #expect(AttestationCache.key(alias: "x", identity: key("one")) != AttestationCache.key(alias: "x", identity: key("two")))
        // Keys are SHA-256 of the exact UTF-8 text, also of a string not stored as UTF-8.
        for text in ["", "-----BEGIN CERTIFICATE-----\n", "é ü ✓", String(repeating: "A", count: 5000), "abc" as NSString as String] {
            #expect(key(text).bytes == Array(SHA256.hash(data: Array(text.utf8))))
            #expect(
                AttestationCache.key(alias: text, identity: key("one")).bytes
                    == Array(SHA256.hash(data: key("one").bytes + Array(text.utf8))))
        }
    }
}
