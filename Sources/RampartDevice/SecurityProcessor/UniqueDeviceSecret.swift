public import Foundation
import RampartModel

/// The Unique Device Secret: 32 random bytes made once at provisioning, kept in a 0600 file,
/// read only by the security monitor.
public struct UniqueDeviceSecret: Sendable {
    let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw DeviceError.invalidSecret("the UDS must be 32 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// Creates a new secret at `path`; refuses to replace an existing one, since that
    /// would give the device a new identity.
    public static func provision(at path: String) throws -> UniqueDeviceSecret {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw DeviceError.alreadyProvisioned(path)
        }
        var generator = SystemRandomNumberGenerator()
        let secret = try UniqueDeviceSecret(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        do {
            try SecretFile.create(secret.bytes.hexString + "\n", at: path)
        } catch {
            if FileManager.default.fileExists(atPath: path) { throw DeviceError.alreadyProvisioned(path) }
            throw error
        }
        return secret
    }

    public static func load(from path: String) throws -> UniqueDeviceSecret {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DeviceError.notProvisioned(path)
        }
        guard let bytes = [UInt8](hexString: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw DeviceError.invalidSecret("\(path) does not hold hexadecimal")
        }
        return try UniqueDeviceSecret(bytes: bytes)
    }
}
