import Crypto
import Foundation
@testable import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing

/// The built `rampart` executable, run as a user would run it, against a live service.
@Suite struct CLIBinaryTests {
    static let binary: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/rampart").path
    }()

    struct Run {
        let status: Int32
        let output: String
    }

    func rampart(_ arguments: [String], config: String) async throws -> Run {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw HarnessError("\(Self.binary) is missing: build it first (swift build --build-tests builds it)")
        }
        let (status, output) = try await Command.run(Self.binary, arguments + ["--config", config], environment: ["RAMPART_TOKEN": ""])
        return Run(status: status, output: output)
    }

    func json<T: Decodable>(_ type: T.Type, _ run: Run) throws -> T {
        #expect(run.status == 0, "\(run.output)")
        return try JSONDecoder.rampart.decode(T.self, from: Data(run.output.utf8))
    }

    @Test func operatorAndAdministratorWorkflow() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = "\(directory)/config.json"
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/mfg.pem", atomically: true, encoding: .utf8)
        let deviceState = DeviceState(directory: "\(directory)/device")
        let record = try await deviceState.provision(.init(kind: .softwareDICE), manufacturer: manufacturer)
        try await LocalService.run(
            dataDirectory: "\(directory)/service", manufacturerCAPaths: ["\(directory)/mfg.pem"], logger: quietLogger
        ) { local in
            let login = try await rampart(
                ["login", "--server", local.url, "--token", local.bootstrapToken, "--fingerprint", local.rootCAFingerprint],
                config: config)
            #expect(login.status == 0, "\(login.output)")
            #expect(login.output.contains("service operator"))

            let created = try json(TenantCreated.self, try await rampart(["tenant", "create", "Contoso", "--json"], config: config))

            // The operator trusts a release of the device runtime, then revokes it.
            let executable = "\(directory)/rampartd-0.2.0"
            try Data("a build of rampartd".utf8).write(to: URL(fileURLWithPath: executable))
            let published = try json(
                SystemSoftwareRelease.self,
                try await rampart(["os", "publish", "--version", "0.2.0", "--executable", executable, "--json"], config: config))
            #expect(published.measurement == SHA256.hash(data: Data("a build of rampartd".utf8)).hexString)
            let revoked = try json(
                SystemSoftwareRelease.self, try await rampart(["os", "revoke", "0.2.0", "--reason", "flawed", "--json"], config: config))
            #expect(revoked.revokedAt != nil)
            let releases = try await rampart(["os", "list"], config: config)
            #expect(releases.output.contains("revoked: flawed"), "\(releases.output)")
            // A deliverable release: packed, then published; the service signs it.
            let build = "\(directory)/rampartd-0.3.0"
            try (Data([0x7f, 0x45, 0x4c, 0x46]) + Data("a newer build".utf8)).write(to: URL(fileURLWithPath: build))
            let osPack = try await Command.run(
                Self.binary, ["os", "pack", "--executable", build, "--version", "0.3.0", "--security-version", "2", "--out", "\(directory)/os.pkg"])
            #expect(osPack.status == 0, "\(osPack.output)")
            let mismatch = try await rampart(["os", "publish", "--file", "\(directory)/os.pkg", "--version", "0.4.0"], config: config)
            #expect(mismatch.status != 0 && mismatch.output.contains("does not match"), "\(mismatch.output)")
            let deliverable = try json(
                SystemSoftwareRelease.self,
                try await rampart(["os", "publish", "--file", "\(directory)/os.pkg", "--feed", "retail-eval", "--json"], config: config))
            #expect(deliverable.imageId != nil && deliverable.securityVersion == 2 && deliverable.feed == .retailEval)
            let listedReleases = try await rampart(["os", "list"], config: config)
            #expect(listedReleases.output.contains("DELIVERABLE"), "\(listedReleases.output)")
            #expect(created.tenant.name == "Contoso")

            let adminLogin = try await rampart(
                ["login", "--server", local.url, "--token", created.token.secret, "--fingerprint", local.rootCAFingerprint, "--json"],
                config: config)
            #expect(try json(WhoAmI.self, adminLogin).role == "Administrator")

            let product = try json(ProductDocument.self, try await rampart(["product", "create", "Thermostat", "--json"], config: config))
            let groups = try json([DeviceGroupDocument].self, try await rampart(["device-group", "list", "--product", "Thermostat", "--json"], config: config))
            #expect(groups.count == 5)
            #expect(groups.allSatisfy { $0.productId == product.id })

            // An app: packed, added (the service signs it), listed, shown, downloaded and verified.
            let component = ComponentID.random()
            try Data(
                #"{"SchemaVersion": 1, "Name": "blink", "ComponentId": "\#(component)", "EntryPoint": "blink.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#
                    .utf8
            ).write(to: URL(fileURLWithPath: "\(directory)/app_manifest.json"))
            try Wasm.command.write(to: URL(fileURLWithPath: "\(directory)/blink.wasm"))
            let pack = try await Command.run(
                Self.binary,
                ["app", "pack", "--manifest", "\(directory)/app_manifest.json", "--wasm", "\(directory)/blink.wasm", "--version", "1.0.0",
                 "--out", "\(directory)/blink.imagepackage"])
            #expect(pack.status == 0, "\(pack.output)")
            let image = try json(
                ImageDocument.self, try await rampart(["image", "add", "--file", "\(directory)/blink.imagepackage", "--json"], config: config))
            #expect(image.componentId == component && image.version == "1.0.0" && image.createdBy == "admin")
            let images = try json([ImageDocument].self, try await rampart(["image", "list", "--component", "\(component)", "--json"], config: config))
            #expect(images == [image])
            let shown = try await rampart(["image", "show", image.id.description], config: config)
            #expect(shown.output.contains("blink") && shown.output.contains(image.sha256), "\(shown.output)")
            let fetched = try await rampart(["image", "download", image.id.description, "--out", "\(directory)/signed.imagepackage"], config: config)
            #expect(fetched.status == 0 && fetched.output.contains("signature verified"), "\(fetched.output)")
            let signed = try ImagePackage(zipped: try Data(contentsOf: URL(fileURLWithPath: "\(directory)/signed.imagepackage")))
            #expect(signed.metadata.imageId == image.id && signed.signature != nil)
            let twice = try await rampart(["image", "add", "--file", "\(directory)/blink.imagepackage"], config: config)
            #expect(twice.status != 0 && twice.output.contains("image_exists"), "\(twice.output)")

            let device = record.deviceId.hex
            let claimed = try json(
                DeviceDocument.self,
                try await rampart(
                    ["device", "claim", "--record", deviceState.recordPath, "--device-group", "Production", "--product", "Thermostat", "--json"],
                    config: config))
            #expect(claimed.id.hex == device)
            let listed = try json([DeviceDocument].self, try await rampart(["device", "list", "--json"], config: config))
            #expect(listed.map(\.id.hex) == [device])

            // Deploy the image to the device's group, set a window, ask for an update, read the status.
            let deployment = try json(
                DeploymentDocument.self,
                try await rampart(["deployment", "create", "--device-group", "Production", "--images", image.id.description, "--json"], config: config))
            #expect(deployment.images.map(\.imageId) == [image.id])
            let deploymentList = try await rampart(["deployment", "list", "--device-group", "Production"], config: config)
            #expect(deploymentList.output.contains("in force"), "\(deploymentList.output)")
            let deploymentShown = try await rampart(["deployment", "show", deployment.id.description], config: config)
            #expect(deploymentShown.output.contains("blink 1.0.0"), "\(deploymentShown.output)")
            let windowed = try json(
                DeviceGroupDocument.self,
                try await rampart(["device-group", "update", "Production", "--maintenance-window", "02:00/120", "--json"], config: config))
            #expect(windowed.maintenanceWindow == MaintenanceWindow(startUTC: "02:00", durationMinutes: 120))
            let badWindow = try await rampart(["device-group", "update", "Production", "--maintenance-window", "2am"], config: config)
            #expect(badWindow.status != 0 && badWindow.output.contains("HH:MM/MINUTES"), "\(badWindow.output)")
            let updateNow = try await rampart(["device-group", "update-now", "Production"], config: config)
            #expect(updateNow.status == 0 && updateNow.output.contains("next contact"), "\(updateNow.output)")
            let status = try await rampart(["device", "show-deployment-status", device], config: config)
            #expect(status.output.contains("awaiting_contact") && status.output.contains("blink 1.0.0"), "\(status.output)")
            let statusJSON = try json(DeploymentStatusDocument.self, try await rampart(["device", "show-deployment-status", device, "--json"], config: config))
            #expect(statusJSON.shouldRun?.deploymentId == deployment.id)

            let chainFile = "\(directory)/chain.pem"
            let download = try await rampart(["ca", "download-chain", "--out", chainFile], config: config)
            #expect(download.status == 0, "\(download.output)")
            #expect(try String(contentsOfFile: chainFile, encoding: .utf8).components(separatedBy: "BEGIN CERTIFICATE").count == 4)

            let audit = try json([AuditEntryDocument].self, try await rampart(["audit", "list", "--json"], config: config))
            #expect(audit.contains { $0.action == "device.claim" })
            #expect(audit.contains { $0.action == "tenant.create" })

            // Bad input: one clear line and a non-zero exit.
            let bad = try await rampart(["device", "show", "not-a-device"], config: config)
            #expect(bad.status != 0)
            #expect(bad.output.contains("64 hexadecimal characters"))
            let missing = try await rampart(["device", "claim", "--record", "\(directory)/nothing.json"], config: config)
            #expect(missing.status != 0)
            #expect(missing.output.contains("cannot read"))
            let conflict = try await rampart(["device", "claim", "--record", deviceState.recordPath], config: config)
            #expect(conflict.status != 0)
            #expect(conflict.output.contains("device_already_claimed"))
            #expect(conflict.output.split(separator: "\n").count == 1)

            // Human output is a table.
            let table = try await rampart(["device-group", "list"], config: config)
            #expect(table.output.hasPrefix("ID"))
            #expect(table.output.contains("Production OS Evaluation"))
        }
    }

    /// `rampart app pack`: a package the reader accepts, and one clear line for a bad module.
    @Test func appPackWritesAPackage() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let component = ComponentID.random()
        try Data(
            #"{"SchemaVersion": 1, "Name": "blink", "ComponentId": "\#(component)", "EntryPoint": "blink.wasm", "Capabilities": {"Gpio": [4]}, "Limits": {"MemoryKB": 256}}"#
                .utf8
        ).write(to: URL(fileURLWithPath: "\(directory)/app_manifest.json"))
        try Wasm.command.write(to: URL(fileURLWithPath: "\(directory)/blink.wasm"))
        try Wasm.library.write(to: URL(fileURLWithPath: "\(directory)/library.wasm"))
        let arguments = ["app", "pack", "--manifest", "\(directory)/app_manifest.json", "--version", "1.0.0"]
        let packed = try await Command.run(
            Self.binary, arguments + ["--wasm", "\(directory)/blink.wasm", "--out", "\(directory)/blink.imagepackage", "--json"])
        let metadata = try json(ImagePackageMetadata.self, Run(status: packed.status, output: packed.output))
        #expect(metadata.componentId == component)
        let package = try ImagePackage(zipped: try Data(contentsOf: URL(fileURLWithPath: "\(directory)/blink.imagepackage")))
        #expect(package.payload == Wasm.command)
        #expect(package.metadata == metadata)

        let refused = try await Command.run(
            Self.binary, arguments + ["--wasm", "\(directory)/library.wasm", "--out", "\(directory)/library.imagepackage"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("wasm_no_entry_point"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/library.imagepackage"))
    }

    /// The benchmark runs and reports figures (their size is for BENCHMARKS.md, not a test).
    @Test func attestationBenchmarkReportsFigures() async throws {
        let run = try await Command.run(Self.binary, ["bench", "attestation", "--seconds", "0.3", "--json"])
        #expect(run.status == 0, "\(run.output)")
        struct Figures: Decodable {
            let signVerifyPerSecond: Double
            let inProcessPerSecond: Double
            let inProcessFirstOfLaunchPerSecond: Double
            let loopbackHTTPSPerSecond: Double
        }
        let figures = try JSONDecoder().decode(Figures.self, from: Data(run.output.utf8))
        #expect(figures.signVerifyPerSecond > 0 && figures.inProcessPerSecond > 0 && figures.loopbackHTTPSPerSecond > 0)
        #expect(figures.inProcessFirstOfLaunchPerSecond > 0)
    }

    @Test func everyCommandHasHelp() async throws {
        let commands = [
            [], ["demo"], ["login"], ["whoami"], ["tenant"], ["tenant", "create"], ["role", "add"], ["token", "create"],
            ["device", "claim"], ["device", "release"], ["product", "delete"], ["device-group", "update"],
            ["ca", "download-chain"], ["audit", "list"], ["os", "publish"], ["os", "revoke"], ["os", "list"], ["os", "pack"], ["app", "pack"],
            ["image", "add"], ["image", "list"], ["image", "show"], ["image", "download"],
            ["deployment", "create"], ["deployment", "list"], ["deployment", "show"], ["device-group", "update-now"],
            ["device", "show-deployment-status"],
        ]
        for command in commands {
            let run = try await Command.run(Self.binary, command + ["--help"])
            #expect(run.status == 0, "\(command): \(run.output)")
            #expect(run.output.contains("USAGE"), "\(command)")
        }
    }
}

