public import Foundation

/// What an image package holds: an app (a wasm module with its manifest) or the system
/// software (the `rampartd` executable).
public enum ImageKind: String, Codable, Sendable, CaseIterable {
    case app
    case systemSoftware = "system-software"
}

/// The SHA-256 and length of one entry of an image package.
public struct ImageEntryDigest: Codable, Sendable, Equatable {
    /// Lowercase hex.
    public var sha256: String
    public var length: Int
    public init(sha256: String, length: Int) {
        self.sha256 = sha256
        self.length = length
    }
}

/// `metadata.json` of an image package: what the package is, and the digest of every other
/// entry, so signing these bytes signs the whole package. `imageId`, `tenantId` and
/// `signedAt` are set by the service when it signs; a package made by `rampart app pack`
/// has none of them.
public struct ImagePackageMetadata: Codable, Sendable, Equatable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var kind: ImageKind
    public var componentId: ComponentID
    public var name: String
    public var version: String
    /// Anti-rollback: a device never installs a lower one of the same component.
    public var securityVersion: Int
    /// Apps only: `manifest.json`.
    public var manifest: ImageEntryDigest?
    public var payload: ImageEntryDigest
    public var imageId: ImageID?
    public var tenantId: TenantID?
    public var signedAt: Date?

    public init(
        kind: ImageKind, componentId: ComponentID, name: String, version: String, securityVersion: Int,
        manifest: ImageEntryDigest?, payload: ImageEntryDigest
    ) {
        schemaVersion = Self.currentSchemaVersion
        self.kind = kind
        self.componentId = componentId
        self.name = name
        self.version = version
        self.securityVersion = securityVersion
        self.manifest = manifest
        self.payload = payload
    }
}

/// The rule for a release or image version: 1–64 letters, digits, `.`, `-`, `+` or `_`
/// (no spaces, no slashes: versions appear in paths and file names).
public func isValidVersion(_ text: String) -> Bool {
    (1...64).contains(text.count) && text.unicodeScalars.allSatisfy { scalar in
        scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || ".-+_".unicodeScalars.contains(scalar))
    }
}

/// An image the service holds: signed, immutable. `sha256` and `length` are those of the
/// signed package file devices download.
public struct ImageDocument: Codable, Sendable, Equatable {
    public var id: ImageID
    /// Nil for system software, which belongs to the service.
    public var tenantId: TenantID?
    public var kind: ImageKind
    public var componentId: ComponentID
    public var name: String
    public var version: String
    public var securityVersion: Int
    public var sha256: String
    public var length: Int
    public var createdAt: Date
    /// Who added it (a user name, or `operator`).
    public var createdBy: String

    public init(
        id: ImageID, tenantId: TenantID?, kind: ImageKind, componentId: ComponentID, name: String, version: String,
        securityVersion: Int, sha256: String, length: Int, createdAt: Date, createdBy: String
    ) {
        self.id = id
        self.tenantId = tenantId
        self.kind = kind
        self.componentId = componentId
        self.name = name
        self.version = version
        self.securityVersion = securityVersion
        self.sha256 = sha256
        self.length = length
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}
