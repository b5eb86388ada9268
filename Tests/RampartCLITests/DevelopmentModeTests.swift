import Crypto
import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartTestSupport
import Testing

/// Development mode end to end with the real binaries: a running device has no local
/// interface until a capability file the service issued for it is installed; capability
/// files for another device or tampered ones are refused; then apps signed by the listed
/// developer key are sideloaded, listed, stopped, started and read over the debug socket,
/// one signed by another key is refused, and `enable-cloud-test` closes it all again.
@Suite struct DevelopmentModeTests {
    @Test func aDeviceOpensItsDebugSocketOnlyWithItsCapability() async throws {
        try await PowerLossTests.withEnvironment { env in
            try await env.deploy(env.images[0])
            let stateDirectory = "\(env.directory)/device"
            let socket = "\(stateDirectory)/debug.sock"
            let device = try Spawned(
                RampartdBinaryTests.binary,
                ["run", "--server", env.local.url, "--fingerprint", env.local.rootCAFingerprint, "--contact-interval", "0.5",
                 "--update-interval", "3600", "--timeout", "20", "--health-window", "1"] + env.state,
                log: "\(env.directory)/rampartd.log")
            _ = try await device.waitForOutput(containing: "update check: installed", seconds: 60)
            #expect(!FileManager.default.fileExists(atPath: socket), "no local interface outside development mode")
            let noSocket = try await Command.run(CLIBinaryTests.binary, ["device", "app", "list", "--socket", socket])
            #expect(noSocket.status != 0 && noSocket.output.contains("debug_socket_unreachable"), "\(noSocket.output)")

            // The developer's key, and capability files: another device's, a tampered one, this device's.
            let developer = P256.Signing.PrivateKey()
            let request = EnableDevelopmentRequest(developerKeys: [developer.publicKey.pemRepresentation], validDays: 7)
            let provisioned = try await Command.run(
                RampartdBinaryTests.binary,
                ["provision", "--manufacturer-cert", "\(env.directory)/mfg/ca.pem", "--manufacturer-key", "\(env.directory)/mfg/ca.key",
                 "--json", "--state-dir", "\(env.directory)/stranger"])
            let strangerRecord = try JSONDecoder.rampart.decode(ProvisioningRecord.self, from: Data(provisioned.output.utf8))
            let other = try await env.admin { client in
                let stranger = try await client.claimDevice(ClaimDeviceRequest(record: strangerRecord, deviceGroupId: env.group.id), tenant: env.tenant)
                return try await client.enableDevelopment(device: stranger.id, request, tenant: env.tenant)
            }
            let genuine = try await env.admin { try await $0.enableDevelopment(device: env.record.deviceId, request, tenant: env.tenant) }
            var tampered = genuine
            var document = try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: genuine.document))) as! [String: Any]
            document["developerKeys"] = [P256.Signing.PrivateKey().publicKey.pemRepresentation]
            tampered.document = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]).base64EncodedString()
            func install(_ file: CapabilityFile, _ name: String) async throws -> (status: Int32, output: String) {
                let path = "\(env.directory)/\(name).json"
                try JSONEncoder.rampart.encode(file).write(to: URL(fileURLWithPath: path))
                return try await Command.run(
                    RampartdBinaryTests.binary,
                    ["install-capability", "--file", path, "--monitor-socket", "\(stateDirectory)/monitor.sock"] + env.state)
            }
            let foreign = try await install(other, "other")
            #expect(foreign.status != 0 && foreign.output.contains("capability_foreign_device"), "\(foreign.output)")
            let forged = try await install(tampered, "tampered")
            #expect(forged.status != 0 && forged.output.contains("capability_signature_invalid"), "\(forged.output)")
            #expect(!FileManager.default.fileExists(atPath: "\(stateDirectory)/capability.json"))
            let installed = try await install(genuine, "genuine")
            #expect(installed.status == 0, "\(installed.output)")
            _ = try await device.waitForOutput(containing: "development mode: debug socket at", seconds: 30)
            let attributes = try FileManager.default.attributesOfItem(atPath: socket)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)

            // Sideload the blink example signed with the developer key; a stranger's key is refused.
            let debug = DebugClient(socketPath: socket)
            let blink = try ImagePackage.app(
                manifest: try await ExampleApps.manifest("blink"), wasm: try await ExampleApps.wasm("blink"), version: "0.0.1", securityVersion: 1)
            let untrusted = try blink.signedByDeveloper(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation, at: Date())
            await #expect(throws: DeviceError(code: "developer_key_untrusted", message: "")) {
                _ = try await debug.send(DebugRequest(command: .sideload, package: try untrusted.zipped().base64EncodedString()))
            }
            let signed = try blink.signedByDeveloper(privateKeyPEM: developer.pemRepresentation, at: Date())
            let loaded = try await debug.send(DebugRequest(command: .sideload, package: try signed.zipped().base64EncodedString()))
            #expect(loaded.message == "sideloaded and started blink")
            // The deployed app is called blink too: by name it is ambiguous, by component ID not.
            await #expect(throws: DeviceError(code: "app_ambiguous", message: "")) {
                _ = try await debug.send(DebugRequest(command: .stop, app: "blink"))
            }
            let sideloaded = signed.metadata.componentId.description

            let listed = try await Command.run(CLIBinaryTests.binary, ["device", "app", "list", "--socket", socket, "--json"])
            #expect(listed.status == 0, "\(listed.output)")
            let apps = try JSONDecoder.rampart.decode([AppSupervisor.Status].self, from: Data(listed.output.utf8))
            #expect(apps.first { $0.componentId == signed.metadata.componentId }?.state == .running, "\(apps)")
            let stopped = try await Command.run(CLIBinaryTests.binary, ["device", "app", "stop", sideloaded, "--socket", socket])
            #expect(stopped.status == 0 && stopped.output.contains("stopped blink: exited with status 0"), "\(stopped.output)")
            let logs = try await debug.send(DebugRequest(command: .logs, app: sideloaded))
            #expect(logs.log?.contains("blink: stopping after") == true, "\(logs.log ?? "")")
            _ = try await debug.send(DebugRequest(command: .start, app: sideloaded))
            #expect(try await debug.send(DebugRequest(command: .list)).apps?.first { $0.componentId == signed.metadata.componentId }?.state == .running)

            // Cloud app updates wait while the device is in development mode, and the service says so.
            func status() async throws -> DeploymentStatusDocument {
                try await env.admin { try await $0.deploymentStatus(device: env.record.deviceId, tenant: env.tenant) }
            }
            try await env.deploy(env.images[1])
            _ = try await env.admin { try await $0.requestUpdateNow(group: env.group.id, tenant: env.tenant) }
            var current = try await status()
            for _ in 0..<100 where current.reason != "development_mode" {
                try await Task.sleep(for: .milliseconds(200))
                current = try await status()
            }
            #expect(
                current.reason == "development_mode" && current.runs?.apps.map(\.imageId) == [env.images[0].id],
                "\(current)\n\((try? String(contentsOfFile: "\(env.directory)/rampartd.log", encoding: .utf8)) ?? "")")

            // Back to cloud-only: capability and sideloaded apps gone, the socket closes.
            let left = try await Command.run(CLIBinaryTests.binary, ["device", "enable-cloud-test", "--socket", socket])
            #expect(left.status == 0 && left.output.contains("left development mode"), "\(left.output)")
            _ = try await device.waitForOutput(containing: "left development mode: cloud updates only", seconds: 10)
            for _ in 0..<50 where FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!FileManager.default.fileExists(atPath: socket))
            #expect(!FileManager.default.fileExists(atPath: "\(stateDirectory)/capability.json"))
            #expect(!FileManager.default.fileExists(atPath: "\(stateDirectory)/sideloaded"))

            // Back in the cloud's hands, the waiting deployment installs.
            _ = try await env.admin { try await $0.requestUpdateNow(group: env.group.id, tenant: env.tenant) }
            current = try await status()
            for _ in 0..<150 where !(current.inSync && current.state == .confirmed) {
                try await Task.sleep(for: .milliseconds(200))
                current = try await status()
            }
            #expect(current.inSync && current.runs?.apps.map(\.imageId) == [env.images[1].id], "\(current)")
            #expect(try await device.terminate() == 0)
        }
    }
}
