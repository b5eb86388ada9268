public import Crypto
public import Foundation
import RampartModel

/// The four top-level TUF roles (no delegations).
public enum RoleName: String, Sendable, CaseIterable {
    case root, targets, snapshot, timestamp
}

/// A public key as TUF metadata lists it. Only ECDSA P-256 (`ecdsa-sha2-nistp256`, SPKI PEM).
public struct TUFKey: Sendable, Equatable {
    public let publicKeyPEM: String

    public init(_ key: P256.Signing.PublicKey) { publicKeyPEM = key.pemRepresentation }

    /// A key given as PEM, exactly as written (the key ID covers the text).
    public init?(pemKey: String) {
        guard (try? P256.Signing.PublicKey(pemRepresentation: pemKey)) != nil else { return nil }
        publicKeyPEM = pemKey
    }

    init(json: JSONValue) throws {
        guard try json.string("keytype") == "ecdsa", try json.string("scheme") == "ecdsa-sha2-nistp256",
            let keyval = json["keyval"], let pem = try? keyval.string("public"),
            (try? P256.Signing.PublicKey(pemRepresentation: pem)) != nil
        else { throw TUFError("tuf_metadata_invalid", "only ecdsa-sha2-nistp256 keys with a PEM public key are supported") }
        publicKeyPEM = pem
    }

    public var json: JSONValue {
        .object(["keytype": .string("ecdsa"), "scheme": .string("ecdsa-sha2-nistp256"), "keyval": .object(["public": .string(publicKeyPEM)])])
    }

    /// Hex SHA-256 of the key's canonical JSON, as TUF key IDs are made.
    public var keyID: String { SHA256.hash(data: json.canonicalBytes).hexString }

    func verifies(_ signatureHex: String, over data: Data) -> Bool {
        guard let key = try? P256.Signing.PublicKey(pemRepresentation: publicKeyPEM), let der = [UInt8](hexString: signatureHex),
            let signature = try? P256.Signing.ECDSASignature(derRepresentation: der)
        else { return false }
        return key.isValidSignature(signature, for: data)
    }
}

/// A private key that signs metadata, with its public half.
public struct TUFSigner: Sendable {
    public let key: TUFKey
    let privateKeyPEM: String

    public init(privateKeyPEM: String) throws {
        let key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        self.key = TUFKey(key.publicKey)
        self.privateKeyPEM = privateKeyPEM
    }

    /// Lowercase hex of the DER ECDSA signature over SHA-256 of `data`.
    func sign(_ data: Data) throws -> String {
        let key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        return try key.signature(for: data).derRepresentation.hexString
    }
}

/// Which keys sign a role and how many signatures it needs.
public struct RoleKeys: Sendable, Equatable {
    public var keyIDs: [String]
    public var threshold: Int
    public init(keyIDs: [String], threshold: Int) {
        self.keyIDs = keyIDs
        self.threshold = threshold
    }
}

/// The fields every role's `signed` part has.
public struct CommonFields: Sendable, Equatable {
    public static let specVersion = "1.0.31"
    public var version: Int
    public var expires: Date

    public init(version: Int, expires: Date) {
        self.version = version
        self.expires = expires
    }

    init(json: JSONValue, type: RoleName) throws {
        guard try json.string("_type") == type.rawValue else {
            throw TUFError("tuf_metadata_invalid", "expected \(type.rawValue) metadata, found \((try? json.string("_type")) ?? "none")")
        }
        guard try json.string("spec_version").split(separator: ".").first == "1" else {
            throw TUFError("tuf_metadata_invalid", "unsupported TUF specification version")
        }
        version = try json.int("version")
        guard version >= 1 else { throw TUFError("tuf_metadata_invalid", "version must be at least 1") }
        guard let date = Self.parseDate(try json.string("expires")) else {
            throw TUFError("tuf_metadata_invalid", "expires must be YYYY-MM-DDTHH:MM:SSZ")
        }
        expires = date
    }

    func fields(_ type: RoleName) -> [String: JSONValue] {
        ["_type": .string(type.rawValue), "spec_version": .string(Self.specVersion), "version": .integer(Int64(version)),
         "expires": .string(Self.format(expires))]
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the one form python-tuf reads.
    public static func format(_ date: Date) -> String {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)).formatted(.iso8601)
    }

    static func parseDate(_ text: String) -> Date? {
        guard text.utf8.count == 20, text.hasSuffix("Z") else { return nil }
        return try? Date(text, strategy: .iso8601)
    }
}

public struct RootMetadata: Sendable, Equatable {
    public var common: CommonFields
    public var keys: [String: TUFKey]
    public var roles: [RoleName: RoleKeys]

    public init(version: Int, expires: Date, keys: [TUFKey], roles: [RoleName: RoleKeys]) {
        common = CommonFields(version: version, expires: expires)
        self.keys = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { first, _ in first })
        self.roles = roles
    }

    public init(json: JSONValue) throws {
        common = try CommonFields(json: json, type: .root)
        guard case .bool(true) = json["consistent_snapshot"] else {
            throw TUFError("tuf_metadata_invalid", "only consistent-snapshot repositories are supported")
        }
        var keys: [String: TUFKey] = [:]
        for (keyID, value) in try json.object("keys") {
            let key = try TUFKey(json: value)
            // python-tuf trusts the listed ID; we recompute it, so one key cannot pose as two.
            guard key.keyID == keyID else { throw TUFError("tuf_metadata_invalid", "key ID \(keyID.prefix(16))… does not match its key") }
            keys[keyID] = key
        }
        self.keys = keys
        var roles: [RoleName: RoleKeys] = [:]
        let listed = try json.object("roles")
        for role in RoleName.allCases {
            guard let entry = listed[role.rawValue] else { throw TUFError("tuf_metadata_invalid", "root lacks the \(role.rawValue) role") }
            let ids = try entry.array("keyids").map { item -> String in
                guard case .string(let id) = item else { throw TUFError("tuf_metadata_invalid", "key IDs are strings") }
                return id
            }
            let threshold = try entry.int("threshold")
            guard threshold >= 1, Set(ids).count == ids.count, ids.allSatisfy({ keys[$0] != nil }) else {
                throw TUFError("tuf_metadata_invalid", "the \(role.rawValue) role needs a threshold of at least 1 and distinct, listed keys")
            }
            roles[role] = RoleKeys(keyIDs: ids, threshold: threshold)
        }
        self.roles = roles
    }

    public var json: JSONValue {
        var fields = common.fields(.root)
        fields["consistent_snapshot"] = .bool(true)
        fields["keys"] = .object(keys.mapValues(\.json))
        fields["roles"] = .object(Dictionary(uniqueKeysWithValues: roles.map { role, keys in
            (role.rawValue, JSONValue.object(["keyids": .array(keys.keyIDs.map(JSONValue.string)), "threshold": .integer(Int64(keys.threshold))]))
        }))
        return .object(fields)
    }
}

/// What snapshot says of targets.json, and timestamp of snapshot.json.
public struct MetaFile: Sendable, Equatable {
    public var version: Int
    public var length: Int?
    public var sha256: String?

    public init(version: Int, length: Int? = nil, sha256: String? = nil) {
        self.version = version
        self.length = length
        self.sha256 = sha256
    }

    /// Describes `bytes` as version `version`.
    public init(version: Int, describing bytes: Data) {
        self.init(version: version, length: bytes.count, sha256: sha256Hex(bytes))
    }

    init(json: JSONValue) throws {
        version = try json.int("version")
        length = json["length"] == nil ? nil : try json.int("length")
        sha256 = json["hashes"] == nil ? nil : try json.object("hashes")["sha256"].map { value in
            guard case .string(let hex) = value else { throw TUFError("tuf_metadata_invalid", "hashes are strings") }
            return hex
        }
    }

    var json: JSONValue {
        var fields: [String: JSONValue] = ["version": .integer(Int64(version))]
        if let length { fields["length"] = .integer(Int64(length)) }
        if let sha256 { fields["hashes"] = .object(["sha256": .string(sha256)]) }
        return .object(fields)
    }
}

public struct TimestampMetadata: Sendable, Equatable {
    public var common: CommonFields
    public var snapshot: MetaFile

    public init(version: Int, expires: Date, snapshot: MetaFile) {
        common = CommonFields(version: version, expires: expires)
        self.snapshot = snapshot
    }

    public init(json: JSONValue) throws {
        common = try CommonFields(json: json, type: .timestamp)
        guard let meta = try json.object("meta")["snapshot.json"] else { throw TUFError("tuf_metadata_invalid", "timestamp lacks snapshot.json") }
        snapshot = try MetaFile(json: meta)
    }

    public var json: JSONValue {
        var fields = common.fields(.timestamp)
        fields["meta"] = .object(["snapshot.json": snapshot.json])
        return .object(fields)
    }
}

public struct SnapshotMetadata: Sendable, Equatable {
    public var common: CommonFields
    public var targets: MetaFile

    public init(version: Int, expires: Date, targets: MetaFile) {
        common = CommonFields(version: version, expires: expires)
        self.targets = targets
    }

    public init(json: JSONValue) throws {
        common = try CommonFields(json: json, type: .snapshot)
        guard let meta = try json.object("meta")["targets.json"] else { throw TUFError("tuf_metadata_invalid", "snapshot lacks targets.json") }
        targets = try MetaFile(json: meta)
    }

    public var json: JSONValue {
        var fields = common.fields(.snapshot)
        fields["meta"] = .object(["targets.json": targets.json])
        return .object(fields)
    }
}

/// One target: its length, SHA-256 and application-specific `custom` data.
public struct TargetFile: Sendable, Equatable {
    public var length: Int
    public var sha256: String
    public var custom: JSONValue?

    public init(length: Int, sha256: String, custom: JSONValue? = nil) {
        self.length = length
        self.sha256 = sha256
        self.custom = custom
    }

    public init(describing bytes: Data, custom: JSONValue? = nil) {
        self.init(length: bytes.count, sha256: sha256Hex(bytes), custom: custom)
    }

    init(json: JSONValue) throws {
        length = try json.int("length")
        // The hash names files (`<sha256>.<path>`, download paths): 64 lowercase hex digits only.
        guard length >= 0, let hash = try json.object("hashes")["sha256"], case .string(let hex) = hash, Self.isDigest(hex) else {
            throw TUFError("tuf_metadata_invalid", "a target needs a length and a sha256 hash of 64 lowercase hex digits")
        }
        sha256 = hex
        custom = json["custom"]
    }

    var json: JSONValue {
        var fields: [String: JSONValue] = ["length": .integer(Int64(length)), "hashes": .object(["sha256": .string(sha256)])]
        if let custom { fields["custom"] = custom }
        return .object(fields)
    }

    static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Checks downloaded bytes against this description.
    public func verify(_ bytes: Data) throws {
        guard bytes.count <= length else { throw TUFError("target_too_large", "the target is longer than the \(length) bytes its metadata lists") }
        guard bytes.count == length, sha256Hex(bytes) == sha256 else {
            throw TUFError("target_hash_mismatch", "the target's bytes are not the ones its metadata describes")
        }
    }
}

public struct TargetsMetadata: Sendable, Equatable {
    public var common: CommonFields
    public var targets: [String: TargetFile]

    public init(version: Int, expires: Date, targets: [String: TargetFile]) {
        common = CommonFields(version: version, expires: expires)
        self.targets = targets
    }

    public init(json: JSONValue) throws {
        common = try CommonFields(json: json, type: .targets)
        targets = try json.object("targets").mapValues(TargetFile.init(json:))
        guard json["delegations"] == nil else { throw TUFError("tuf_metadata_invalid", "delegations are not supported") }
    }

    public var json: JSONValue {
        var fields = common.fields(.targets)
        fields["targets"] = .object(targets.mapValues(\.json))
        return .object(fields)
    }
}

/// A signed metadata file: `{"signatures": [{"keyid", "sig"}], "signed": …}`.
public struct SignedEnvelope: Sendable {
    public let signed: JSONValue
    public let signatures: [(keyID: String, signature: String)]

    /// Signs the canonical bytes of `signed` with each signer and returns the file's bytes.
    public static func make(_ signed: JSONValue, signers: [TUFSigner]) throws -> Data {
        let bytes = signed.canonicalBytes
        let signatures = try signers.map { signer in
            JSONValue.object(["keyid": .string(signer.key.keyID), "sig": .string(try signer.sign(bytes))])
        }
        return JSONValue.object(["signatures": .array(signatures), "signed": signed]).jsonBytes
    }

    public init(parsing data: Data, limit: Int) throws {
        guard data.count <= limit else { throw TUFError("tuf_metadata_too_large", "metadata of \(data.count) bytes exceeds the limit of \(limit)") }
        let json = try JSONValue(parsing: data)
        guard let signed = json["signed"], case .object = signed else { throw TUFError("tuf_metadata_invalid", "no signed part") }
        self.signed = signed
        signatures = try json.array("signatures").map { entry in
            (try entry.string("keyid"), try entry.string("sig"))
        }
    }

    /// Throws unless at least `role.threshold` distinct keys of the role signed.
    public func verify(_ role: RoleKeys, keys: [String: TUFKey], name: RoleName) throws {
        let bytes = signed.canonicalBytes
        var good = Set<String>()
        for (keyID, signature) in signatures where role.keyIDs.contains(keyID) && !good.contains(keyID) {
            if let key = keys[keyID], key.verifies(signature, over: bytes) { good.insert(keyID) }
        }
        guard good.count >= role.threshold else {
            throw TUFError(
                "tuf_signature_invalid", "\(name.rawValue) metadata has \(good.count) valid signature(s) of its keys; \(role.threshold) needed")
        }
    }
}

func sha256Hex(_ data: Data) -> String { SHA256.hash(data: data).hexString }

extension JSONValue {
    func string(_ key: String) throws -> String {
        guard case .string(let value) = self[key] else { throw TUFError("tuf_metadata_invalid", "\(key) must be a string") }
        return value
    }

    func int(_ key: String) throws -> Int {
        guard case .integer(let value) = self[key], let int = Int(exactly: value) else {
            throw TUFError("tuf_metadata_invalid", "\(key) must be an integer")
        }
        return int
    }

    func object(_ key: String) throws -> [String: JSONValue] {
        guard case .object(let value) = self[key] else { throw TUFError("tuf_metadata_invalid", "\(key) must be an object") }
        return value
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard case .array(let value) = self[key] else { throw TUFError("tuf_metadata_invalid", "\(key) must be an array") }
        return value
    }
}
