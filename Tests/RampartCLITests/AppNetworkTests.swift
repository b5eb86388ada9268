import Crypto
import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing
import X509

/// The telemetry example app against a real nginx that demands client certificates from the
/// tenant's chain (`rampart ca download-chain`): with `DeviceAuthentication` it is accepted
/// as the device; without, the runtime refuses the request before it leaves; a client with
/// no certificate is refused by nginx.
@Suite struct AppNetworkTests {
    @Test func telemetryReachesNginxWithTheDeviceCertificate() async throws {
        try await UpdateRepositoryTests().withFleet { fleet, device in
            let chain = try await fleet.admin { try await $0.chainPEM(tenant: fleet.tenant) }
            let webCA = try CertificateAuthority.makeRoot(commonName: "Contoso Web CA", now: Date())
            let key = P256.Signing.PrivateKey()
            let certificate = try webCA.issueServerCertificate(
                hostnames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], publicKey: key.publicKey, now: Date())
            try await LocalNginx.with(certificatePEM: certificate.pemString, keyPEM: key.pemRepresentation, clientCAPEM: chain) { nginx in
                let directory = URL(fileURLWithPath: try temporaryDirectory(prefix: "rampart-apps"))
                defer { try? FileManager.default.removeItem(at: directory) }
                let network = DeviceAppNetwork(credential: fleet.credential, extraTrustRootsPEM: webCA.certificate.pemString)
                let supervisor = AppSupervisor(environment: AppEnvironment(directory: directory, network: network, tenantID: fleet.tenant))
                let endpoint = "https://localhost:\(nginx.port)/v1/ingest"

                func runTelemetry(_ manifest: AppManifest) async throws -> String {
                    let storage = supervisor.environment.storageDirectory(manifest.componentId)
                    try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
                    try endpoint.write(to: storage.appendingPathComponent("endpoint"), atomically: true, encoding: .utf8)
                    try supervisor.start(AppDefinition(manifest: manifest, wasm: try await ExampleApps.wasm("telemetry")))
                    let log = supervisor.environment.logFile(manifest.componentId)
                    var output = ""
                    for _ in 0..<200 where !output.contains("telemetry: ") {
                        try await Task.sleep(for: .milliseconds(100))
                        output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                    }
                    #expect(await supervisor.stop(manifest.componentId) == .exited(0))
                    return output
                }

                var manifest = try AppManifest(json: try await ExampleApps.manifest("telemetry"))
                manifest.capabilities.deviceAuthentication = fleet.tenant.description
                let accepted = try await runTelemetry(manifest)
                #expect(accepted.contains("telemetry: HTTP 200 accepted") && accepted.contains(device.id.description), "\(accepted)")
                #expect(nginx.accessLog.contains(#"200 ""#) && nginx.accessLog.contains("SUCCESS"), "\(nginx.accessLog)")

                // The same app without the capability: refused by the runtime, nginx never sees it.
                let before = nginx.accessLog
                manifest.componentId = ComponentID(uuid: UUID())
                manifest.capabilities.deviceAuthentication = nil
                let refused = try await runTelemetry(manifest)
                #expect(refused.contains("telemetry: the runtime refused the request (-1)"), "\(refused)")
                #expect(nginx.accessLog == before)

                // A client without a certificate: nginx refuses it.
                let anonymous = try await network.send(AppHTTPSRequest(method: "GET", url: URL(string: endpoint)!, deviceAuthentication: false))
                #expect(anonymous.status == 400)
                #expect(String(decoding: anonymous.body, as: UTF8.self).contains("No required SSL certificate was sent"))
                for _ in 0..<40 where !nginx.accessLog.contains(#"400 "-" NONE"#) { try await Task.sleep(for: .milliseconds(50)) }
                #expect(nginx.accessLog.contains(#"400 "-" NONE"#), "\(nginx.accessLog)")
            }
        }
    }
}
