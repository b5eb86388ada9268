import Foundation
@testable import RampartCLI
import RampartDevice
import RampartModel
import RampartPKI
import RampartTestSupport
import SwiftASN1
import Testing
import X509

/// Two `rampart-server` nodes on one PostgreSQL behind nginx (a TCP round-robin balancer,
/// so mutual TLS reaches the nodes) serve one fleet: no double claim, no duplicate
/// certificate, no lost report, one view of deployments and update metadata.
@Suite struct ScaleOutTests {
    @Test func twoNodesOnOnePostgreSQLServeOneFleet() async throws {
        guard FileManager.default.fileExists(atPath: "/usr/lib/nginx/modules/ngx_stream_module.so") else {
            Issue.record("nginx's stream module is missing: run scripts/install-deps.sh")
            return
        }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        try String(repeating: "5a", count: 32).write(toFile: "\(directory)/kek", atomically: true, encoding: .utf8)
        var devices: [TestDevice] = []
        for _ in 0..<24 { devices.append(try await TestDevice.make(manufacturer: manufacturer)) }

        try await PostgresTestServer.with { database in
            func node(_ name: String) async throws -> (Spawned, Int, String) {
                let port = try ChildProcess.freeLoopbackPort()
                let node = try Spawned(
                    ServerBinaryTests.binary,
                    ["--data-dir", "\(directory)/\(name)", "--port", "\(port)", "--database", database, "--key-encryption-key-file",
                     "\(directory)/kek", "--manufacturer-ca", "\(directory)/manufacturer.pem", "--bootstrap-token-file", "\(directory)/\(name).token"],
                    log: "\(directory)/\(name).log")
                let output = try await node.waitForOutput(containing: "root CA SHA-256")
                let fingerprint = try #require(output.firstMatch(of: /root CA SHA-256: +([0-9a-f]{64})/)?.1)
                return (node, port, String(fingerprint))
            }
            let (a, portA, fingerprint) = try await node("a")
            let (b, portB, fingerprintB) = try await node("b")
            defer {
                kill(a.pid, SIGTERM)
                kill(b.pid, SIGTERM)
            }
            #expect(fingerprint == fingerprintB, "both nodes serve the one CA kept (sealed) in PostgreSQL")
            let token = try String(contentsOfFile: "\(directory)/a.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/b.token"), "only the first node to start issues a bootstrap token")

            // nginx: TCP round robin over the two nodes, so mutual TLS reaches them.
            try await LocalNginx.balancing(["127.0.0.1:\(portA)", "127.0.0.1:\(portB)"]) { port in
                let server = "https://127.0.0.1:\(port)"
                var root: String?
                for _ in 0..<100 where root == nil {
                    root = try? await LoginCommand.pinnedRoot(server: server, fingerprint: fingerprint)
                    if root == nil { try await Task.sleep(for: .milliseconds(50)) }
                }
                let rootPEM = try #require(root)
                func client<T: Sendable>(_ token: String, _ body: (APIClient) async throws -> T) async throws -> T {
                    try await APIClient.with(server: server, token: token, trustRootPEM: rootPEM, body)
                }

                let (contoso, fabrikam) = try await client(token) {
                    _ = try await $0.publishRelease(TestDevice.release)
                    return (try await $0.createTenant(CreateTenantRequest(name: "Contoso")), try await $0.createTenant(CreateTenantRequest(name: "Fabrikam")))
                }
                let tenant = contoso.tenant.id
                let group = try await client(contoso.token.secret) { client in
                    let product = try await client.createProduct(CreateProductRequest(name: "Thermostat"), tenant: tenant)
                    return try await client.deviceGroups(tenant: tenant, product: product.id).first { $0.name == "Production" }!
                }

                // Both tenants claim the same four devices at once, through both nodes: one winner each.
                let racing = Array(devices.prefix(4))
                let claims = try await withThrowingTaskGroup(of: (DeviceID, Bool).self) { tasks in
                    for device in racing {
                        for (token, groupID) in [(contoso.token.secret, Optional(group.id)), (fabrikam.token.secret, nil)] {
                            let owner = token == contoso.token.secret ? tenant : fabrikam.tenant.id
                            tasks.addTask {
                                do {
                                    _ = try await client(token) {
                                        try await $0.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: groupID), tenant: owner)
                                    }
                                    return (device.id, true)
                                } catch let failure as APIFailure where failure.body.error == "device_claimed_elsewhere" {
                                    return (device.id, false)
                                }
                            }
                        }
                    }
                    var results: [(DeviceID, Bool)] = []
                    for try await result in tasks { results.append(result) }
                    return results
                }
                for device in racing {
                    #expect(claims.filter { $0.0 == device.id && $0.1 }.count == 1, "exactly one tenant holds \(device.id)")
                }

                // The fleet: claimed by Contoso, attesting twice each (renewal), all at once.
                let fleet = Array(devices.dropFirst(4))
                try await client(contoso.token.secret) { client in
                    for device in fleet { _ = try await client.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: group.id), tenant: tenant) }
                }
                let credentials = try await withThrowingTaskGroup(of: [DeviceSession.Credential].self) { tasks in
                    for device in fleet {
                        tasks.addTask {
                            [try await DeviceSession.attest(server: server, rootPEM: rootPEM, monitor: device.monitor),
                             try await DeviceSession.attest(server: server, rootPEM: rootPEM, monitor: device.monitor)]
                        }
                    }
                    var all: [DeviceSession.Credential] = []
                    for try await pair in tasks { all += pair }
                    return all
                }
                let serials = try credentials.map { try Certificate(pemEncoded: $0.result.certificateChain[0]).serialNumber.description }
                #expect(credentials.count == fleet.count * 2 && Set(serials).count == serials.count, "no duplicate certificate serials")

                // Reports from every device, each batch sent twice: every event counted exactly once.
                let image = ImageID(uuid: UUID())
                let component = ComponentID(uuid: UUID())
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for credential in credentials.enumerated().filter({ $0.offset.isMultiple(of: 2) }).map(\.element) {
                        tasks.addTask {
                            let transport = DeviceTransport(server: server, rootPEM: rootPEM, credential: credential)
                            let batch = FailureReportBatch(reports: (0..<3).map { index in
                                FailureReport(
                                    deviceId: credential.result.deviceId, time: Date(), eventType: .unplanned, eventClass: .application,
                                    category: .crash, componentId: component, imageId: image, systemSoftwareVersion: TestDevice.version,
                                    frames: ["sample_\(index)", "main"], details: "Trap: unreachable")
                            })
                            _ = try await transport.upload(batch)
                            _ = try await transport.upload(batch)
                        }
                    }
                    try await tasks.waitForAll()
                }
                let buckets = try await client(contoso.token.secret) { try await $0.errorBuckets(tenant: tenant) }
                #expect(buckets.count == 3 && buckets.allSatisfy { $0.count == fleet.count && $0.affectedDevices == fleet.count }, "\(buckets)")

                // One deployment, seen the same by every device through either node.
                let deployment = try await client(contoso.token.secret) { try await $0.createDeployment(images: [], group: group.id, tenant: tenant) }
                let seen = try await withThrowingTaskGroup(of: DeploymentID?.self) { tasks in
                    for credential in credentials.prefix(fleet.count) {
                        tasks.addTask { try await DeviceTransport(server: server, rootPEM: rootPEM, credential: credential).updateCheck().deploymentId }
                    }
                    var all: [DeploymentID?] = []
                    for try await id in tasks { all.append(id) }
                    return all
                }
                #expect(Set(seen) == [deployment.id])
                // The update repository is the same on both nodes: byte-identical timestamps.
                let path = "/v1/device/tuf/\(group.id)/metadata/timestamp.json"
                func timestamp(_ port: Int) async throws -> Data? {
                    try await DeviceTransport(server: "https://127.0.0.1:\(port)", rootPEM: rootPEM, credential: credentials[0]).fetch(path, offset: 0, limit: 1 << 16)
                }
                let fromA = try await timestamp(portA), fromB = try await timestamp(portB)
                #expect(fromA != nil && fromA == fromB)

                // A simulated fleet lives through the balancer: attests, renews, checks, downloads, reports.
                let virtualFleet = FleetSimulation.Fleet(
                    server: server, rootPEM: rootPEM, token: contoso.token.secret, tenant: tenant, group: group.id, manufacturer: manufacturer,
                    version: TestDevice.version, runtime: TestDevice.runtime)
                var settings = FleetSimulation.Settings(devices: 40)
                settings.concurrency = 16
                settings.ramp = 1
                settings.duration = 3
                settings.timeScale = 40_000
                settings.reportChance = 1
                let simulated = try await FleetSimulation(settings: settings, fleet: virtualFleet, progress: { _ in }).run()
                let operations = Dictionary(uniqueKeysWithValues: simulated.operations.map { ($0.name, $0.count) })
                #expect(simulated.errors.isEmpty && simulated.claimed == 40, "\(simulated.errors)")
                #expect(operations["attest"] == 40 && operations["download"] == 40, "\(operations)")
                #expect(simulated.reportsAcknowledged > 0 && simulated.reportsStored == simulated.reportsAcknowledged, "no report lost")

                // Both nodes did their share.
                for nodePort in [portA, portB] {
                    let metrics = try await APIClient.with(server: "https://127.0.0.1:\(nodePort)", token: nil, trustRootPEM: rootPEM) { try await $0.text("/metrics") }
                    let served = metrics.split(separator: "\n").filter { $0.hasPrefix("hb_requests") }
                        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
                    #expect(served >= 20, "node on \(nodePort) served \(served) requests")
                }
            }
            #expect(try await a.terminate() == 0)
            #expect(try await b.terminate() == 0)
        }
    }
}
