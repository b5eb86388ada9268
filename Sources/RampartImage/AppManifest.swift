public import Foundation
public import RampartModel

/// An app's manifest (`app_manifest.json`): who it is and what it may do. The shape is the
/// one DESIGN.md gives; a key this version does not know is refused rather than ignored,
/// since an ignored capability would be a silently missing restriction.
public struct AppManifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var name: String
    public var componentId: ComponentID
    public var entryPoint: String
    public var capabilities: Capabilities
    public var limits: Limits

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion = "SchemaVersion", name = "Name", componentId = "ComponentId", entryPoint = "EntryPoint"
        case capabilities = "Capabilities", limits = "Limits"
    }

    public struct Capabilities: Codable, Sendable, Equatable {
        public var allowedConnections: [String]?
        public var deviceAuthentication: String?
        public var mutableStorage: MutableStorage?
        public var gpio: [Int]?
        public var uart: [String]?
        public var i2cMaster: [String]?
        public var spiMaster: [String]?
        public var adc: [Int]?
        public var pwm: [Int]?
        public var systemEventNotifications: Bool?
        public var softwareUpdateDeferral: Bool?
        public var allowedApplicationConnections: [String]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case allowedConnections = "AllowedConnections", deviceAuthentication = "DeviceAuthentication"
            case mutableStorage = "MutableStorage", gpio = "Gpio", uart = "Uart", i2cMaster = "I2cMaster"
            case spiMaster = "SpiMaster", adc = "Adc", pwm = "Pwm", systemEventNotifications = "SystemEventNotifications"
            case softwareUpdateDeferral = "SoftwareUpdateDeferral"
            case allowedApplicationConnections = "AllowedApplicationConnections"
        }
    }

    public struct MutableStorage: Codable, Sendable, Equatable {
        public var sizeKB: Int
        enum CodingKeys: String, CodingKey, CaseIterable { case sizeKB = "SizeKB" }
    }

    public struct Limits: Codable, Sendable, Equatable {
        public var memoryKB: Int
        public var cpuFuelPerSecond: Int?
        enum CodingKeys: String, CodingKey, CaseIterable {
            case memoryKB = "MemoryKB", cpuFuelPerSecond = "CpuFuelPerSecond"
        }
    }

    /// Reads and checks a manifest: known keys only, a name, a component ID, a `.wasm` entry
    /// point, a memory limit between 64 KiB and 256 MiB.
    public init(json data: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ImagePackageError("manifest_invalid", "the app manifest is not a JSON object")
        }
        try Self.requireKnown(object, CodingKeys.allCases.map(\.rawValue), at: "the manifest")
        if let capabilities = object["Capabilities"] as? [String: Any] {
            try Self.requireKnown(capabilities, Capabilities.CodingKeys.allCases.map(\.rawValue), at: "Capabilities")
            if let storage = capabilities["MutableStorage"] as? [String: Any] {
                try Self.requireKnown(storage, MutableStorage.CodingKeys.allCases.map(\.rawValue), at: "MutableStorage")
            }
        }
        if let limits = object["Limits"] as? [String: Any] {
            try Self.requireKnown(limits, Limits.CodingKeys.allCases.map(\.rawValue), at: "Limits")
        }
        do {
            self = try JSONDecoder().decode(AppManifest.self, from: data)
        } catch {
            throw ImagePackageError("manifest_invalid", "the app manifest does not have the expected shape: \(error)")
        }
        guard schemaVersion == 1 else {
            throw ImagePackageError("manifest_invalid", "SchemaVersion \(schemaVersion) is not supported (1 is)")
        }
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ImagePackageError("manifest_invalid", "Name must be 1–64 letters, digits, '-', '_' or '.'")
        }
        guard componentId != .runtime else {
            throw ImagePackageError("manifest_invalid", "ComponentId \(componentId) is reserved for the system software")
        }
        guard entryPoint.hasSuffix(".wasm"), !entryPoint.contains("/") else {
            throw ImagePackageError("manifest_invalid", "EntryPoint must name a .wasm file")
        }
        guard (64...262_144).contains(limits.memoryKB) else {
            throw ImagePackageError("manifest_invalid", "Limits.MemoryKB must be between 64 and 262144")
        }
        if let fuel = limits.cpuFuelPerSecond, !(1_000...2_000_000_000).contains(fuel) {
            throw ImagePackageError("manifest_invalid", "Limits.CpuFuelPerSecond must be between 1000 and 2000000000")
        }
        if let storage = capabilities.mutableStorage, !(1...65_536).contains(storage.sizeKB) {
            throw ImagePackageError("manifest_invalid", "MutableStorage.SizeKB must be between 1 and 65536")
        }
    }

    private static func requireKnown(_ object: [String: Any], _ known: [String], at place: String) throws {
        let unknown = Set(object.keys).subtracting(known)
        guard unknown.isEmpty else {
            throw ImagePackageError(
                "manifest_invalid", "unknown key(s) in \(place): \(unknown.sorted().joined(separator: ", ")); known: \(known.joined(separator: ", "))")
        }
    }
}
