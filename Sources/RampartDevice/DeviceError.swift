public import RampartModel

/// Why a device-side operation failed.
public struct DeviceError: RampartError, Equatable {
    public let code: String
    public let message: String
    public var statusCode: Int { 500 }

    public static func == (lhs: DeviceError, rhs: DeviceError) -> Bool { lhs.code == rhs.code }

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    static let notLaunched = DeviceError(
        code: "not_launched", message: "the security monitor has not measured a launch yet; nothing can be attested")
    static func invalidSecret(_ why: String) -> DeviceError { DeviceError(code: "invalid_secret", message: why) }
    static func alreadyProvisioned(_ path: String) -> DeviceError {
        DeviceError(code: "already_provisioned", message: "\(path) exists: this device has an identity already")
    }
    static func notProvisioned(_ path: String) -> DeviceError {
        DeviceError(code: "not_provisioned", message: "no device secret at \(path): provision the device first")
    }
}
