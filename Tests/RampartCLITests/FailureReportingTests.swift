import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing

/// Failure reporting end to end on a live service: the crasher app traps on simulated
/// devices, their queues upload over mutual TLS, and the service makes one bucket of it —
/// counted once however often a report is sent, with malformed batches refused whole.
@Suite struct FailureReportingTests {
    @Test func crashesAcrossAFleetMakeOneBucket() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        let devices = [
            try await TestDevice.make(manufacturer: manufacturer), try await TestDevice.make(manufacturer: manufacturer),
            try await TestDevice.make(manufacturer: manufacturer),
        ]
        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/manufacturer.pem"], logger: quietLogger
        ) { local in
            let root = try await LoginCommand.pinnedRoot(server: local.url, fingerprint: local.rootCAFingerprint)
            let (contoso, fabrikam) = try await APIClient.with(server: local.url, token: local.bootstrapToken, trustRootPEM: root) {
                _ = try await $0.publishRelease(TestDevice.release)
                return (try await $0.createTenant(CreateTenantRequest(name: "Contoso")), try await $0.createTenant(CreateTenantRequest(name: "Fabrikam")))
            }
            let tenant = contoso.tenant.id
            func admin<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
                try await APIClient.with(server: local.url, token: contoso.token.secret, trustRootPEM: root, body)
            }
            let crasher = AppDefinition(
                manifest: try AppManifest(json: try await ExampleApps.manifest("crasher")), wasm: try await ExampleApps.wasm("crasher"))
            let (group, image, readerToken) = try await admin { client in
                let product = try await client.createProduct(CreateProductRequest(name: "Thermostat"), tenant: tenant)
                let group = try await client.deviceGroups(tenant: tenant, product: product.id).first { $0.name == "Production" }!
                for device in devices {
                    _ = try await client.claimDevice(ClaimDeviceRequest(record: device.record, deviceGroupId: group.id), tenant: tenant)
                }
                let package = try ImagePackage.app(
                    manifest: try await ExampleApps.manifest("crasher"), wasm: crasher.wasm, version: "1.0.0", securityVersion: 1)
                let image = try await client.addImage(package: try package.zipped(), tenant: tenant)
                _ = try await client.assignRole(AssignRoleRequest(user: "rita", role: .reader), tenant: tenant)
                let reader = try await client.createToken(CreateTokenRequest(user: "rita"), tenant: tenant)
                return (group, image, reader.secret)
            }

            // Every device runs the crasher (as its update report says); two of the three crash, twice each.
            var transports: [DeviceTransport] = []
            for device in devices {
                let credential = try await DeviceSession.attest(server: local.url, rootPEM: root, monitor: device.monitor)
                let transport = DeviceTransport(server: local.url, rootPEM: root, credential: credential)
                try await transport.report(
                    DeviceUpdateReport(
                        sequence: 1, deploymentId: nil, state: .confirmed,
                        running: RunningSoftware(
                            systemSoftware: .init(version: TestDevice.version),
                            apps: [.init(componentId: image.componentId, imageId: image.id, version: "1.0.0")])))
                transports.append(transport)
            }
            var uploaded: [[FailureReport]] = []
            for (device, transport) in zip(devices.prefix(2), transports) {
                let queue = ReportQueue(directory: "\(directory)/reports-\(device.id.hex.prefix(8))")
                let reporter = FailureReporter(queue: queue, deviceId: device.id, systemSoftwareVersion: TestDevice.version)
                let board = SimulatedBoard()
                var policy = AppSupervisor.RestartPolicy()
                policy.initialBackoff = 0.2
                let supervisor = AppSupervisor(
                    environment: AppEnvironment(directory: URL(fileURLWithPath: "\(directory)/apps-\(device.id.hex.prefix(8))"), peripherals: board, tenantID: tenant),
                    policy: policy) { definition, exit, loop in reporter.appEnded(definition, exit, crashLoop: loop) }
                var installed = crasher
                installed.imageID = image.id
                installed.manifest.limits.cpuFuelPerSecond = 5_000_000
                try supervisor.start(installed)
                for round in 0..<2 {
                    // Running again (after its restart), and said so on its UART.
                    for _ in 0..<100 where !(supervisor.status().first?.restarts == round
                        && supervisor.state(of: crasher.manifest.componentId) == .running
                        && board.uartTransmitted("UART0").count == (round + 1) * "crasher: ready\n".utf8.count)
                    {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    board.uartReceive("UART0", Array("trap".utf8))
                    #expect(await supervisor.nextExit(of: crasher.manifest.componentId, within: 15) != nil)
                }
                await supervisor.stopAll()
                // The exit hook runs right after the exit becomes visible.
                for _ in 0..<100 where queue.pending().first?.count != 2 { try await Task.sleep(for: .milliseconds(50)) }
                let pending = queue.pending()
                #expect(pending.count == 1 && pending.first?.count == 2, "identical crashes within a minute are one report: \(pending)")
                uploaded.append(pending)
                #expect(try await queue.upload(via: transport) == 1)
                #expect(queue.count == 0)
            }

            var buckets = try await admin { try await $0.errorBuckets(tenant: tenant) }
            #expect(buckets.count == 1, "\(buckets)")
            let bucket = try #require(buckets.first)
            #expect(bucket.count == 4 && bucket.reports == 2 && bucket.affectedDevices == 2)
            #expect(bucket.category == .crash && bucket.imageId == image.id && bucket.componentId == image.componentId)
            #expect(bucket.reason == "Trap: unreachable" && !bucket.frames.isEmpty)
            #expect(bucket.crashRatePerThousand.map { abs($0 - 2000.0 / 3) < 0.1 } == true, "\(String(describing: bucket.crashRatePerThousand))")

            // A retransmission (the acknowledgement was lost) is stored and counted once.
            let again = try await transports[0].upload(FailureReportBatch(reports: uploaded[0]))
            #expect(again == FailureReportReceipt(accepted: 0, duplicates: 1))
            #expect(try await admin { try await $0.errorBuckets(tenant: tenant) }.first?.count == 4)

            // Malformed batches are refused whole: nothing of them is stored.
            let fresh = FailureReport(
                deviceId: devices[0].id, time: Date(), eventType: .unplanned, eventClass: .application, category: .crash,
                componentId: image.componentId, imageId: image.id, systemSoftwareVersion: TestDevice.version, frames: ["main"],
                details: "Trap: unreachable")
            var foreign = fresh
            foreign.reportId = UUID()
            foreign.deviceId = devices[1].id
            var future = fresh
            future.reportId = UUID()
            future.time = Date().addingTimeInterval(3600)
            var longFrame = fresh
            longFrame.reportId = UUID()
            longFrame.frames = [String(repeating: "f", count: 300)]
            var anonymous = fresh
            anonymous.reportId = UUID()
            anonymous.componentId = nil
            for (name, batch) in [("another device's", [fresh, foreign]), ("future", [fresh, future]), ("long frame", [longFrame]),
                                  ("no component", [anonymous]), ("empty", []), ("duplicate ID", [fresh, fresh])] {
                await #expect(throws: APIFailure.self, "\(name)") {
                    _ = try await transports[0].upload(FailureReportBatch(reports: batch))
                }
                do {
                    _ = try await transports[0].upload(FailureReportBatch(reports: batch))
                } catch let failure as APIFailure {
                    #expect(failure.status == 400 && failure.body.error == "invalid_field", "\(name): \(failure)")
                }
            }
            buckets = try await admin { try await $0.errorBuckets(tenant: tenant) }
            #expect(buckets.map(\.count) == [4], "nothing of a refused batch was stored: \(buckets)")

            // A Reader reads the bucket, its samples and the export; another tenant sees nothing of it.
            try await APIClient.with(server: local.url, token: readerToken, trustRootPEM: root) { reader in
                let shown = try await reader.errorBucket(bucket.id, tenant: tenant)
                #expect(shown.samples?.count == 2, "\(shown)")
                #expect(shown.samples?.allSatisfy { Array($0.frames.prefix(3)) == bucket.frames && !$0.frames.isEmpty } == true, "\(shown)")
                let csv = try await reader.exportErrors(tenant: tenant, since: "1h")
                let rows = csv.split(separator: "\r\n")
                #expect(rows.first?.hasPrefix("report_id,bucket_id,time,device_id,") == true)
                #expect(rows.count == 3 && rows.dropFirst().allSatisfy { $0.contains(bucket.id) }, "\(csv)")
                let filtered = try await reader.errorBuckets(tenant: tenant, group: group.id, image: image.id)
                #expect(filtered.map(\.id) == [bucket.id])
                let sinceLongAgo = try await reader.errorBuckets(tenant: tenant, since: "2000-01-01T00:00:00Z")
                #expect(sinceLongAgo.map(\.id) == [bucket.id])
                await #expect(throws: CLIError.self) { _ = try await reader.errorBuckets(tenant: tenant, since: "2099-01-01T00:00:00Z") }
            }
            try await APIClient.with(server: local.url, token: fabrikam.token.secret, trustRootPEM: root) { other in
                await #expect(throws: APIFailure.self) { _ = try await other.errorBucket(bucket.id, tenant: tenant) }
                let theirs = try await other.errorBuckets(tenant: fabrikam.tenant.id)
                #expect(theirs.isEmpty)
            }

            // The CLI, as a Reader: list, show by prefix, export to a file.
            let config = "\(directory)/cli.json"
            func rampart(_ arguments: [String]) async throws -> (status: Int32, output: String) {
                try await Command.run(CLIBinaryTests.binary, arguments + ["--config", config], environment: ["RAMPART_TOKEN": ""])
            }
            #expect(try await rampart(["login", "--server", local.url, "--token", readerToken, "--fingerprint", local.rootCAFingerprint]).status == 0)
            let listed = try await rampart(["errors", "list", "--device-group", group.id.description])
            #expect(listed.status == 0 && listed.output.contains(String(bucket.id.prefix(12))) && listed.output.contains("application/crash"), "\(listed.output)")
            let shown = try await rampart(["errors", "show", String(bucket.id.prefix(12)), "--json"])
            #expect(shown.status == 0 && (try? JSONDecoder.rampart.decode(ErrorBucket.self, from: Data(shown.output.utf8)))?.id == bucket.id, "\(shown.output)")
            let exported = try await rampart(["errors", "export", "--csv", "--out", "\(directory)/errors.csv"])
            #expect(exported.status == 0 && exported.output.contains("Wrote 2 report(s)"), "\(exported.output)")
            let refused = try await rampart(["errors", "list", "--since", "yesterday"])
            #expect(refused.status != 0 && refused.output.contains("since"), "\(refused.output)")
        }
    }

    /// Reports wait on disk: a runtime killed outright (SIGKILL) uploads them at its next
    /// start, with one more saying it was killed.
    @Test func reportsSurviveAKilledRuntime() async throws {
        try await PowerLossTests.withEnvironment { env in
            let component = ComponentID.random()
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "trapper", "ComponentId": "\#(component)", "EntryPoint": "t.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#.utf8)
            let trapper = try await env.admin { client in
                try await client.addImage(
                    package: try ImagePackage.app(manifest: manifest, wasm: Wasm.trapping, version: "1.0.0", securityVersion: 1).zipped(),
                    tenant: env.tenant)
            }
            try await env.deploy(trapper)
            let arguments = ["run", "--server", env.local.url, "--fingerprint", env.local.rootCAFingerprint, "--contact-interval", "0.5",
                             "--update-interval", "3600", "--timeout", "20", "--health-window", "1"] + env.state
            let first = try Spawned(RampartdBinaryTests.binary, arguments + ["--report-interval", "3600"], log: "\(env.directory)/first.log")
            _ = try await first.waitForOutput(containing: "update check: rolledBack")
            let queued = try FileManager.default.contentsOfDirectory(atPath: "\(env.directory)/device/reports").filter { $0.hasSuffix(".report.json") }
            #expect(queued.count >= 2, "a crash and a rollback are queued: \(queued)")
            kill(first.pid, SIGKILL)
            _ = try await Command.wait(for: first.pid)

            let second = try Spawned(RampartdBinaryTests.binary, arguments + ["--report-interval", "0.5"], log: "\(env.directory)/second.log")
            let log = try await second.waitForOutput(containing: "uploaded ")
            #expect(try await second.terminate() == 0)
            let buckets = try await env.admin { try await $0.errorBuckets(tenant: env.tenant) }
            let categories = Set(buckets.map(\.category))
            #expect(categories.isSuperset(of: [.crash, .updateRolledBack, .runtimeCrash]), "\(buckets)\n\(log)")
            let crash = try #require(buckets.first { $0.category == .crash })
            #expect(crash.componentId == component && crash.imageId == trapper.id && !crash.frames.isEmpty, "\(crash)")
            #expect(buckets.first { $0.category == .updateRolledBack }?.eventClass == .application)
            #expect(buckets.first { $0.category == .runtimeCrash }?.reason.contains("ended without stopping") == true)
            // Nothing is left queued once acknowledged.
            let left = try FileManager.default.contentsOfDirectory(atPath: "\(env.directory)/device/reports").filter { $0.hasSuffix(".report.json") }
            #expect(left.isEmpty, "\(left)")
        }
    }
}
