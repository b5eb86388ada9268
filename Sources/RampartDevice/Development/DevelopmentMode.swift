public import Foundation
public import RampartImage
public import RampartModel
public import X509

/// Development mode: a device with a valid capability file (issued by the service for this
/// device, signed by its tenant) accepts apps signed by the developer keys it lists and
/// opens its debug socket. Without one there is no local interface at all.
public struct DevelopmentMode: Sendable {
    public let state: DeviceState
    public let root: Certificate
    public let device: DeviceID
    public let tenant: TenantID

    public init(state: DeviceState, root: Certificate, device: DeviceID, tenant: TenantID) {
        self.state = state
        self.root = root
        self.device = device
        self.tenant = tenant
    }

    var capabilityPath: String { "\(state.directory)/capability.json" }
    var sideloadedDirectory: String { "\(state.directory)/sideloaded" }
    public var socketPath: String { "\(state.directory)/debug.sock" }

    /// Verifies `file` for this device and keeps it; refused files change nothing.
    @discardableResult
    public func install(_ file: Data, now: Date = Date()) async throws -> DeviceCapability {
        guard let capabilityFile = try? JSONDecoder.rampart.decode(CapabilityFile.self, from: file) else {
            throw ImagePackageError("capability_invalid", "the file is not a capability file")
        }
        let capability = try await capabilityFile.verify(root: root, device: device, tenant: tenant, now: now)
        try DurableFile.write(file, to: capabilityPath)
        return capability
    }

    /// The installed capability, verified again now: an expired or damaged one is nothing.
    public func current(now: Date = Date()) async -> DeviceCapability? {
        guard let bytes = FileManager.default.contents(atPath: capabilityPath),
            let file = try? JSONDecoder.rampart.decode(CapabilityFile.self, from: bytes)
        else { return nil }
        return try? await file.verify(root: root, device: device, tenant: tenant, now: now)
    }

    /// Back to cloud-only: the capability and every sideloaded app are removed.
    public func remove() throws {
        try? FileManager.default.removeItem(atPath: sideloadedDirectory)
        if FileManager.default.fileExists(atPath: capabilityPath) { try FileManager.default.removeItem(atPath: capabilityPath) }
    }

    /// Checks a package for sideloading — signed by a developer key the capability lists, or
    /// by the tenant — and that its module compiles.
    func sideloadable(_ bytes: Data, capability: DeviceCapability) async throws -> AppDefinition {
        let package = try ImagePackage(zipped: bytes)
        if package.signature.flatMap({ try? JSONDecoder.rampart.decode(ImagePackageSignature.self, from: $0) })?.developerKey != nil {
            try DeveloperSignature.verify(package, trustedKeys: capability.developerKeys)
        } else {
            try await ImagePackageVerifier(root: root).verify(package, tenant: tenant, now: Date())
        }
        try AppHost.validate(package.payload)
        var definition = try AppDefinition(package: package)
        definition.sideloaded = true
        return definition
    }

    func keepSideloaded(_ bytes: Data, component: ComponentID) throws {
        try FileManager.default.createDirectory(atPath: sideloadedDirectory, withIntermediateDirectories: true)
        try DurableFile.write(bytes, to: "\(sideloadedDirectory)/\(component).imagepackage")
    }

    /// The sideloaded apps kept from earlier, verified again.
    func sideloaded(capability: DeviceCapability) async -> [AppDefinition] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: sideloadedDirectory)) ?? []
        var apps: [AppDefinition] = []
        for name in names.sorted() where name.hasSuffix(".imagepackage") {
            guard let bytes = FileManager.default.contents(atPath: "\(sideloadedDirectory)/\(name)"),
                let app = try? await sideloadable(bytes, capability: capability)
            else { continue }
            apps.append(app)
        }
        return apps
    }
}

/// A request on the debug socket (one JSON object per line).
public struct DebugRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable { case list, start, stop, logs, sideload, enableCloudTest = "enable-cloud-test" }
    public var command: Command
    /// The app, by name or component ID (start, stop, logs).
    public var app: String?
    /// Base64 of an image package (sideload).
    public var package: String?
    /// How many lines from the end of the log (logs; 100 when absent).
    public var lines: Int?

    public init(command: Command, app: String? = nil, package: String? = nil, lines: Int? = nil) {
        self.command = command
        self.app = app
        self.package = package
        self.lines = lines
    }
}

public struct DebugResponse: Codable, Sendable {
    public var apps: [AppSupervisor.Status]?
    public var log: String?
    public var message: String?
    public var error: String?
}

/// The debug socket of a device in development mode (`<state>/debug.sock`, mode 0600):
/// list, start, stop and read the logs of apps, sideload one, or leave development mode.
public struct DebugServer: Sendable {
    public static let lineLimit = 48 << 20
    public let mode: DevelopmentMode
    public let apps: AppSupervisor

    public init(mode: DevelopmentMode, apps: AppSupervisor) {
        self.mode = mode
        self.apps = apps
    }

    /// Starts the kept sideloaded apps and serves the socket until the device leaves
    /// development mode (then it returns) or the task is cancelled. Returns at once, with no
    /// socket, when there is no valid capability.
    public func run(ready: @escaping @Sendable () -> Void = {}) async throws {
        guard let capability = await mode.current() else { return }
        for app in await mode.sideloaded(capability: capability) {
            await apps.remove(app.manifest.componentId)
            try? apps.start(app)
        }
        let (left, leaving) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await LineSocket.serve(path: mode.socketPath, mode: 0o600, lineLimit: Self.lineLimit, ready: ready) { line in
                    let response = await answer(line, capability: capability, leaving: leaving)
                    return (try? JSONEncoder.rampart.encode(response)) ?? Data()
                }
            }
            group.addTask { for await _ in left { return } }
            try await group.next()
            group.cancelAll()
        }
    }

    func answer(_ line: [UInt8], capability: DeviceCapability, leaving: AsyncStream<Void>.Continuation) async -> DebugResponse {
        // The capability is checked at every request: past its expiry the socket closes.
        guard await mode.current() != nil else {
            leaving.yield()
            return DebugResponse(message: "the development capability has expired or was removed; the debug socket closes", error: "capability_expired")
        }
        guard let request = try? JSONDecoder.rampart.decode(DebugRequest.self, from: Data(line)) else {
            return DebugResponse(message: "send {\"command\": list|start|stop|logs|sideload|enable-cloud-test, …}", error: "bad_request")
        }
        do {
            switch request.command {
            case .list:
                return DebugResponse(apps: apps.status())
            case .start, .stop, .logs:
                let status = try app(named: request.app)
                switch request.command {
                case .start:
                    guard let definition = await definition(of: status.componentId, capability: capability) else {
                        throw DeviceError(code: "app_not_installed", message: "\(status.name) is no longer installed")
                    }
                    try apps.start(definition)
                    return DebugResponse(apps: apps.status().filter { $0.componentId == status.componentId }, message: "started \(status.name)")
                case .stop:
                    let exit = await apps.stop(status.componentId)
                    return DebugResponse(
                        apps: apps.status().filter { $0.componentId == status.componentId },
                        message: "stopped \(status.name)" + (exit.map { ": \($0)" } ?? ""))
                default:
                    let text = (try? String(contentsOf: apps.environment.logFile(status.componentId), encoding: .utf8)) ?? ""
                    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                    let wanted = min(max(1, request.lines ?? 100), 10_000)
                    return DebugResponse(log: lines.suffix(wanted + 1).joined(separator: "\n"))
                }
            case .sideload:
                guard let bytes = request.package.flatMap({ Data(base64Encoded: $0) }) else {
                    throw DeviceError(code: "bad_request", message: "sideload needs the package, base64")
                }
                let definition = try await mode.sideloadable(bytes, capability: capability)
                try mode.keepSideloaded(bytes, component: definition.manifest.componentId)
                await apps.remove(definition.manifest.componentId)
                try apps.start(definition)
                return DebugResponse(
                    apps: apps.status().filter { $0.componentId == definition.manifest.componentId },
                    message: "sideloaded and started \(definition.manifest.name)")
            case .enableCloudTest:
                for app in await mode.sideloaded(capability: capability) {
                    await apps.remove(app.manifest.componentId)
                    try? FileManager.default.removeItem(at: apps.environment.storageDirectory(app.manifest.componentId, sideloaded: true))
                }
                try mode.remove()
                // Closed just after this answer is written.
                Task {
                    try? await Task.sleep(for: .milliseconds(200))
                    leaving.yield()
                }
                return DebugResponse(message: "left development mode: the capability and sideloaded apps are removed; the debug socket closes")
            }
        } catch let error as any RampartError {
            return DebugResponse(message: error.message, error: error.code)
        } catch {
            return DebugResponse(message: "\(error)", error: "debug_failed")
        }
    }

    private func app(named name: String?) throws -> AppSupervisor.Status {
        guard let name else { throw DeviceError(code: "bad_request", message: "name the app") }
        let matches = apps.status().filter { $0.name == name || $0.componentId.description == name.lowercased() }
        guard let status = matches.first else { throw DeviceError(code: "app_not_found", message: "no app named \(name) on this device") }
        guard matches.count == 1 else {
            throw DeviceError(
                code: "app_ambiguous", message: "\(matches.count) apps are named \(name); name one by component ID: \(matches.map(\.componentId.description).joined(separator: ", "))")
        }
        return status
    }

    /// An app's definition from where it is installed: sideloaded, else the active slot.
    private func definition(of component: ComponentID, capability: DeviceCapability) async -> AppDefinition? {
        if let app = await mode.sideloaded(capability: capability).first(where: { $0.manifest.componentId == component }) { return app }
        let slots = SlotStore(directory: mode.state.directory)
        guard let active = try? slots.boot().active, let image = slots.images(in: active)?.first(where: { $0.componentId == component })
        else { return nil }
        return await slots.verifiedApp(image, in: active, root: mode.root, tenant: mode.tenant, now: Date())
    }
}

/// The developer's side of the debug socket.
public struct DebugClient: Sendable {
    public let socketPath: String
    public init(socketPath: String) { self.socketPath = socketPath }

    public func send(_ request: DebugRequest) async throws -> DebugResponse {
        let line: [UInt8]
        do {
            line = try await LineSocket.call(path: socketPath, request: try JSONEncoder.rampart.encode(request), lineLimit: DebugServer.lineLimit)
        } catch let error as DeviceError where error.code == "socket_unreachable" {
            throw DeviceError(
                code: "debug_socket_unreachable",
                message: "no debug socket at \(socketPath): is the device in development mode (rampartd install-capability) and running?")
        }
        guard let response = try? JSONDecoder.rampart.decode(DebugResponse.self, from: Data(line)) else {
            throw DeviceError(code: "socket_protocol", message: "the device's answer is not JSON")
        }
        if let code = response.error { throw DeviceError(code: code, message: response.message ?? code) }
        return response
    }
}
