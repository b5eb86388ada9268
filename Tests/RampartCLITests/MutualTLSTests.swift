import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
@testable import RampartCLI
import RampartDevice
import RampartModel
import RampartPKI
import RampartTestSupport
import SwiftASN1
import Testing
import X509

/// After attestation a device calls the service with its 24-hour certificate over mutual
/// TLS; the service maps certificate → device → tenant and refuses the rest.
@Suite struct MutualTLSTests {
    /// GET /v1/device/whoami with `identity` as the client certificate (nil: none).
    func whoAmI(_ url: String, rootPEM: String, identity: (chain: [String], key: P256.Signing.PrivateKey)?) async throws -> (Int, String) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(rootPEM.utf8)))
        if let identity {
            tls.certificateChain = try identity.chain.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }.map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.key.pemRepresentation.utf8), format: .pem))
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            let response = try await client.execute(HTTPClientRequest(url: "\(url)/v1/device/whoami"), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            try await client.shutdown()
            return (Int(response.status.code), String(buffer: body))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    @Test func attestedDeviceIsKnownByItsCertificate() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        let device = try await TestDevice.make(manufacturer: manufacturer)

        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/manufacturer.pem"], logger: quietLogger
        ) { local in
            let login = try await LoginCommand.login(
                server: local.url, token: local.bootstrapToken, fingerprint: local.rootCAFingerprint, caFile: nil)
            let root = try #require(login.rootPEM)
            let (contoso, fabrikam) = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                (try await $0.createTenant(CreateTenantRequest(name: "Contoso")), try await $0.createTenant(CreateTenantRequest(name: "Fabrikam")))
            }
            _ = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                try await $0.publishRelease(TestDevice.release)
            }
            _ = try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root) {
                try await $0.claimDevice(ClaimDeviceRequest(record: device.record), tenant: contoso.tenant.id)
            }
            // Attest, as the device does: no token, only evidence from its security monitor.
            let credential = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor)
            let result = credential.result
            let clientKey = try credential.clientKey
            let identity = (chain: result.certificateChain, key: clientKey)

            let (status, body) = try await whoAmI(local.url, rootPEM: root, identity: identity)
            #expect(status == 200, "\(body)")
            let who = try JSONDecoder.rampart.decode(DeviceWhoAmI.self, from: Data(body.utf8))
            #expect(who == DeviceWhoAmI(deviceId: device.id, tenantId: contoso.tenant.id))

            // No certificate: the device routes say so.
            let (anonymous, anonymousBody) = try await whoAmI(local.url, rootPEM: root, identity: nil)
            #expect(anonymous == 401)
            #expect(anonymousBody.contains("device_certificate_required"))

            // A certificate from a CA that is not ours fails the handshake.
            let rogue = try CertificateAuthority.makeRoot(commonName: "Rogue", now: Date())
            let rogueLeaf = try rogue.issueDeviceCertificate(
                deviceID: device.id.hex, publicKey: .init(clientKey.publicKey),
                attestation: DiceTcbInfo(vendor: "x", model: "x", version: "1", securityVersion: 0, layer: 1, fwids: []),
                now: Date())
            await #expect(throws: (any Error).self) {
                _ = try await whoAmI(local.url, rootPEM: root, identity: ([rogueLeaf.pemString], clientKey))
            }

            // An expired certificate from the right CA is refused with its own code, and counted.
            let tenantCA = try tenantCA(dataDirectory: "\(directory)/service", certificatePEM: result.certificateChain[1])
            let expired = try tenantCA.issueDeviceCertificate(
                deviceID: device.id.hex, publicKey: .init(clientKey.publicKey),
                attestation: DiceTcbInfo(vendor: "x", model: "x", version: "1", securityVersion: 0, layer: 1, fwids: []),
                now: Date().addingTimeInterval(-3 * 86_400))
            let (stale, staleBody) = try await whoAmI(
                local.url, rootPEM: root, identity: ([expired.pemString] + result.certificateChain.dropFirst(), clientKey))
            #expect(stale == 401)
            #expect(staleBody.contains("certificate_expired"))
            // A certificate for the right device from the right CA, presented without its key, fails the handshake.
            await #expect(throws: (any Error).self) {
                _ = try await whoAmI(local.url, rootPEM: root, identity: (result.certificateChain, P256.Signing.PrivateKey()))
            }

            // A certificate that is itself a CA, from the right tenant CA, fails the handshake.
            let subCA = try tenantCA.issueSubordinate(commonName: device.id.hex, lifetime: .tenantCA, maxPathLength: 0, now: Date())
            await #expect(throws: (any Error).self) {
                _ = try await whoAmI(
                    local.url, rootPEM: root, identity: ([subCA.certificate.pemString] + result.certificateChain.dropFirst(), try P256.Signing.PrivateKey(pemRepresentation: subCA.privateKeyPEM)))
            }

            // Once the operator revokes the release the certificate was issued for, it stops working at once.
            _ = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                try await $0.revokeRelease(version: TestDevice.version, reason: "flaw")
            }
            let (revoked, revokedBody) = try await whoAmI(local.url, rootPEM: root, identity: identity)
            #expect(revoked == 403)
            #expect(revokedBody.contains("software_revoked"))

            // Refused now, the device asks for recovery: an hour's certificate that reaches the
            // update routes and nothing else.
            await #expect(throws: APIFailure.self) { _ = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor) }
            let recovery = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor, recovery: true)
            #expect(recovery.result.recovery?.hasPrefix("software_revoked") == true, "\(recovery.result)")
            #expect(recovery.result.expiresAt <= Date().addingTimeInterval(3601))
            let (restricted, restrictedBody) = try await whoAmI(
                local.url, rootPEM: root, identity: (recovery.result.certificateChain, try recovery.clientKey))
            #expect(restricted == 403 && restrictedBody.contains("recovery_only"), "\(restrictedBody)")
            // The update check answers (the device is in no group, so there is nothing to fetch).
            let check = try await DeviceTransport(server: local.url, rootPEM: root, credential: recovery).updateCheck()
            #expect(check.deviceGroupId == nil && !check.checkNow)
            // A recovery attestation is not the device's last attestation.
            let shown = try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root) {
                try await $0.device(device.id, tenant: contoso.tenant.id)
            }
            #expect(shown.lastAttestation?.certificateExpiresAt == result.expiresAt)

            // Released by Contoso and claimed by Fabrikam: Contoso's certificate no longer speaks for it.
            try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root) {
                try await $0.releaseDevice(device.id, tenant: contoso.tenant.id)
            }
            _ = try await APIClient.with(server: local.url, token: fabrikam.token.secret, trustRootPEM: root) {
                try await $0.claimDevice(ClaimDeviceRequest(record: device.record), tenant: fabrikam.tenant.id)
            }
            let (foreign, foreignBody) = try await whoAmI(local.url, rootPEM: root, identity: identity)
            #expect(foreign == 403)
            #expect(foreignBody.contains("certificate_foreign_tenant"))

            // Every refusal above is counted by its code.
            let metrics = try await APIClient.with(server: local.url, token: nil, trustRootPEM: root) { try await $0.text("/metrics") }
            for code in ["certificate_expired", "certificate_foreign_tenant", "device_certificate_required"] {
                #expect(metrics.contains("rampart_refusals_total{code=\"\(code)\"}"), "\(code) not counted")
            }
        }
    }

    /// The tenant CA's key, read from the service's data directory (SQLite mode keeps CA
    /// keys as files), to forge what an attacker with an old certificate would hold.
    func tenantCA(dataDirectory: String, certificatePEM: String) throws -> CertificateAuthority {
        let certificate = try Certificate(pemEncoded: certificatePEM)
        let directory = "\(dataDirectory)/pki"
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let pem = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
            let key = try P256.Signing.PrivateKey(pemRepresentation: pem)
            if Certificate.PublicKey(key.publicKey) == certificate.publicKey {
                return CertificateAuthority(certificate: certificate, privateKey: key)
            }
        }
        throw HarnessError("no key for the tenant CA in \(directory)")
    }
}
