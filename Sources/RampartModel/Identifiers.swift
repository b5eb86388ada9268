public import Foundation

/// A service-assigned identifier backed by a UUID, written in lowercase.
///
/// Each entity has its own type so a product ID can never be passed where a
/// device-group ID is expected:
///
/// ```swift
/// let id = try ProductID(validating: "3f0c…")
/// ```
public protocol EntityID: Hashable, Codable, Sendable, CustomStringConvertible {
    var uuid: UUID { get }
    init(uuid: UUID)
}

extension EntityID {
    /// A new random identifier.
    public static func random() -> Self { Self(uuid: UUID()) }

    /// Parses an identifier, or returns `nil` when `text` is not a UUID.
    public init?(_ text: String) {
        guard let uuid = UUIDText.parse(text) else { return nil }
        self.init(uuid: uuid)
    }

    public var description: String { UUIDText.lowercase(uuid) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a UUID")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Identifies a tenant: the unit of isolation in the Security Service.
public struct TenantID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// Identifies a product (a model of device a tenant builds).
public struct ProductID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// Identifies a device group within a product.
public struct DeviceGroupID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// Identifies a deployment: the set of app images a device group should run, from a time on.
public struct DeploymentID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// Identifies a user of a tenant.
public struct UserID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// Identifies an API token (not the secret itself).
public struct TokenID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// A device's identity: lowercase hex of SHA-256 over its DeviceID public key's
/// SubjectPublicKeyInfo, so it is 64 hexadecimal characters.
///
/// Input may be upper case; it is normalised once, here, at the edge.
public struct DeviceID: Hashable, Codable, Sendable, CustomStringConvertible, Comparable {
    public let hex: String

    public init?(_ text: String) {
        guard text.utf8.count == 64 else { return nil }
        let isLowerHex = text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        if isLowerHex {
            hex = text
            return
        }
        let lower = text.lowercased()
        guard lower.utf8.count == 64, lower.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            return nil
        }
        hex = lower
    }

    public var description: String { hex }

    public static func < (lhs: DeviceID, rhs: DeviceID) -> Bool { lhs.hex < rhs.hex }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = DeviceID(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a device ID (64 hexadecimal characters)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// Identifies a component: an app (its manifest's `ComponentId`) or the system software,
/// across all its versions.
public struct ComponentID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }

    /// The system software (the `rampartd` runtime): one component across all releases.
    /// No app may claim it.
    public static let runtime = ComponentID("00000000-0000-0000-0000-000000000001")!
}

/// Identifies one image: one signed version of a component, assigned by the service.
public struct ImageID: EntityID {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// The text form of UUIDs, written and read in one pass over bytes: Foundation's
/// `uuidString` and `UUID(uuidString:)` cost microseconds each, and identifiers are bound
/// to and read from every SQL statement.
enum UUIDText {
    /// `8-4-4-4-12` lowercase hexadecimal digits.
    static func lowercase(_ uuid: UUID) -> String {
        withUnsafeBytes(of: uuid.uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                var out = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    text[out] = lowercaseHexDigit(byte >> 4)
                    text[out + 1] = lowercaseHexDigit(byte & 0x0f)
                    out += 2
                }
                return out
            }
        }
    }

    /// The UUID in `text`, `8-4-4-4-12` hexadecimal digits of either case; nil otherwise
    /// (what `UUID(uuidString:)` accepts).
    static func parse(_ text: String) -> UUID? {
        var text = text
        return text.withUTF8 { utf8 -> UUID? in
            guard utf8.count == 36 else { return nil }
            var bytes = (
                UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0)
            )
            let complete = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
                var index = 0
                var written = 0
                while index < 36 {
                    if index == 8 || index == 13 || index == 18 || index == 23 {
                        guard utf8[index] == UInt8(ascii: "-") else { return false }
                        index += 1
                        continue
                    }
                    guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return false }
                    out[written] = high << 4 | low
                    written += 1
                    index += 2
                }
                return written == 16
            }
            return complete ? UUID(uuid: bytes) : nil
        }
    }
}
