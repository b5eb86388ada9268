import ArgumentParser
import Crypto
import Foundation
import RampartDevice
import RampartImage
import RampartModel

/// Development mode: the capability file from the service, and the device's debug socket.
extension DeviceCommands {
    struct EnableDevelopment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enable-development",
            abstract: "Have the service issue a development capability file for one device (Administrator).",
            discussion: """
                The file is signed by the tenant and bound to the device's ID; it lists the developer \
                keys whose signatures the device will accept for sideloaded apps (make one with \
                `rampart app keygen`). Copy it to the device and install it there with \
                `rampartd install-capability --file FILE`: the device then opens its debug socket \
                (<state-dir>/debug.sock) for `rampart device sideload` and `rampart device app`. \
                Without it a device has no local interface at all.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device ID.") var deviceID: String
        @Option(name: .customLong("developer-key"), help: "A developer's public key (PEM); repeat for several.") var developerKeys: [String]
        @Option(help: "Days the capability lasts (1–365).") var days = 30
        @Option(help: "The capability file to write.") var out: String

        func run() async throws {
            let id = try parseDeviceID(deviceID)
            let keys = try developerKeys.map { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("cannot read \(path)") }
                return text
            }
            let file = try await global.withClient { client in
                try await client.enableDevelopment(
                    device: id, EnableDevelopmentRequest(developerKeys: keys, validDays: days), tenant: try await global.tenantID(client))
            }
            let encoder = JSONEncoder.rampart
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            do {
                try encoder.encode(file).write(to: URL(fileURLWithPath: out))
            } catch {
                throw CLIError("cannot write \(out): \(error.localizedDescription)")
            }
            try global.done(
                "Wrote the development capability for device \(id) to \(out) (valid \(days) days). Install it on the device: rampartd install-capability --file \(out)",
                ["file": out, "deviceId": id.description, "validDays": "\(days)"])
        }
    }

    struct EnableCloudTest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enable-cloud-test",
            abstract: "Leave development mode: remove the capability and sideloaded apps; cloud updates only.",
            discussion: "Speaks to the device's debug socket, which closes afterwards.")
        @OptionGroup var debug: DebugSocketOptions

        func run() async throws {
            let response = try await debug.send(DebugRequest(command: .enableCloudTest))
            try debug.global.done(response.message ?? "left development mode")
        }
    }

    struct Sideload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install and start an app on a device in development mode, over its debug socket.",
            discussion: """
                The package must be signed with a developer key the device's capability lists \
                (`rampart app pack --sign-with KEY`) or by the tenant. It replaces an app of the same \
                component until the device leaves development mode.
                """)
        @OptionGroup var debug: DebugSocketOptions
        @Argument(help: "The image package.") var package: String

        func run() async throws {
            guard let bytes = FileManager.default.contents(atPath: package) else { throw CLIError("cannot read \(package)") }
            let response = try await debug.send(DebugRequest(command: .sideload, package: bytes.base64EncodedString()))
            try debug.global.emit(response) { $0.message ?? "" }
        }
    }

    struct DeviceApp: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "app",
            abstract: "List, start, stop and read the logs of apps on a device in development mode.",
            subcommands: [AppList.self, AppStart.self, AppStop.self, AppLogs.self])
    }

    struct AppList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The device's apps and their states.")
        @OptionGroup var debug: DebugSocketOptions

        func run() async throws {
            let apps = try await debug.send(DebugRequest(command: .list)).apps ?? []
            try debug.global.emit(apps) { apps in
                table(
                    ["NAME", "STATE", "RESTARTS", "DENIED CALLS", "LAST EXIT", "COMPONENT"],
                    apps.map { app in
                        [app.name, app.state.rawValue, "\(app.restarts)",
                         app.deniedCalls.isEmpty ? "-" : app.deniedCalls.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
                         app.lastExit ?? "-", app.componentId.description]
                    })
            }
        }
    }

    struct AppStart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "start", abstract: "Start an installed app.")
        @OptionGroup var debug: DebugSocketOptions
        @Argument(help: "The app's name or component ID.") var app: String

        func run() async throws {
            try debug.global.emit(try await debug.send(DebugRequest(command: .start, app: app))) { $0.message ?? "" }
        }
    }

    struct AppStop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop", abstract: "Stop an app: its terminate event, then forced off after 2 seconds.")
        @OptionGroup var debug: DebugSocketOptions
        @Argument(help: "The app's name or component ID.") var app: String

        func run() async throws {
            try debug.global.emit(try await debug.send(DebugRequest(command: .stop, app: app))) { $0.message ?? "" }
        }
    }

    struct AppLogs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logs", abstract: "The end of an app's output.")
        @OptionGroup var debug: DebugSocketOptions
        @Argument(help: "The app's name or component ID.") var app: String
        @Option(help: "How many lines.") var lines = 100

        func run() async throws {
            try debug.global.emit(try await debug.send(DebugRequest(command: .logs, app: app, lines: lines))) { $0.log ?? "" }
        }
    }
}

struct DebugSocketOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions
    @Option(help: "The device's debug socket (<state-dir>/debug.sock), present only in development mode.") var socket: String

    func send(_ request: DebugRequest) async throws -> DebugResponse {
        do {
            return try await DebugClient(socketPath: socket).send(request)
        } catch let error as DeviceError {
            throw CLIError("\(error.message) [\(error.code)]")
        }
    }
}

extension AppCommands {
    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a developer signing key (ECDSA P-256) for sideloading apps.",
            discussion: """
                Writes the private key (mode 0600) and its public half (<out>.pub.pem). Give the \
                public key to `rampart device enable-development --developer-key`; sign packages with \
                `rampart app pack --sign-with <out>`.
                """)
        @Flag(help: "Print machine-readable JSON.") var json = false
        @Option(help: "The private key file to write.") var out: String

        func run() throws {
            guard !FileManager.default.fileExists(atPath: out) else { throw CLIError("\(out) exists; not overwriting a key") }
            let key = P256.Signing.PrivateKey()
            try SecretFile.write(key.pemRepresentation, to: out)
            try key.publicKey.pemRepresentation.write(toFile: "\(out).pub.pem", atomically: true, encoding: .utf8)
            let result = ["privateKey": out, "publicKey": "\(out).pub.pem"]
            if json {
                print(String(decoding: try JSONEncoder.rampart.encode(result), as: UTF8.self))
            } else {
                print("Wrote \(out) (private, 0600) and \(out).pub.pem.")
            }
        }
    }
}
