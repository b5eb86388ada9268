public import Crypto
public import Foundation
public import RampartModel
import ZIPFoundation

/// An image package: one ZIP file with fixed entries, all stored uncompressed —
///
/// | entry | what |
/// |---|---|
/// | `metadata.json` | ``ImagePackageMetadata``: kind, component, version, security version, entry digests |
/// | `manifest.json` | apps only: the app manifest |
/// | `payload` | the `.wasm` module, or the `rampartd` executable |
/// | `signature.json` | added by the service when it signs |
///
/// Reading trusts nothing in the file: entries are taken by exact name, at most one each
/// and no others; only stored (method 0) regular files; sizes capped before a byte is read
/// and again while reading; CRCs checked; and the metadata's digests must match the
/// entries, so signing `metadata.json` signs the package.
public struct ImagePackage: Sendable, Equatable {
    public static let metadataEntry = "metadata.json"
    public static let manifestEntry = "manifest.json"
    public static let payloadEntry = "payload"
    public static let signatureEntry = "signature.json"

    /// The most bytes a package of each kind may hold, and its small entries.
    public struct Limits: Sendable {
        public var app = 32 << 20
        public var systemSoftware = 256 << 20
        public var smallEntry = 64 << 10
        public init() {}
    }

    /// The exact bytes of `metadata.json` (what the service signs) and their meaning.
    public let metadataBytes: Data
    public let metadata: ImagePackageMetadata
    public let manifest: Data?
    public let payload: Data
    public let signature: Data?

    /// A new, unsigned package of an app: the manifest and wasm are checked first.
    public static func app(manifest manifestBytes: Data, wasm: Data, version: String, securityVersion: Int) throws -> ImagePackage {
        let manifest = try AppManifest(json: manifestBytes)
        try WasmPayloadCheck.check(wasm, manifest: manifest)
        let metadata = ImagePackageMetadata(
            kind: .app, componentId: manifest.componentId, name: manifest.name, version: try checkedVersion(version),
            securityVersion: try checkedSecurityVersion(securityVersion), manifest: digest(manifestBytes), payload: digest(wasm))
        return ImagePackage(
            metadataBytes: try encode(metadata), metadata: metadata, manifest: manifestBytes, payload: wasm, signature: nil)
    }

    /// A new, unsigned package of the system software: the `rampartd` executable (ELF).
    public static func systemSoftware(executable: Data, version: String, securityVersion: Int) throws -> ImagePackage {
        try checkExecutable(executable)
        let metadata = ImagePackageMetadata(
            kind: .systemSoftware, componentId: .runtime, name: "rampartd", version: try checkedVersion(version),
            securityVersion: try checkedSecurityVersion(securityVersion), manifest: nil, payload: digest(executable))
        return ImagePackage(metadataBytes: try encode(metadata), metadata: metadata, manifest: nil, payload: executable, signature: nil)
    }

    /// An uploaded system-software package, checked as the service checks it before signing:
    /// unsigned, of the runtime component, its payload an ELF executable.
    public init(uploadedSystemSoftware data: Data, limits: Limits = Limits()) throws {
        try self.init(zipped: data, limits: limits)
        guard !isSignedOrAssigned else { throw ImagePackageError.alreadySigned }
        guard metadata.kind == .systemSoftware else {
            throw ImagePackageError("image_kind_unsupported", "this is an app package; add it to a tenant with `rampart image add`")
        }
        guard metadata.componentId == .runtime, metadata.name == "rampartd" else {
            throw ImagePackageError("package_invalid", "a system-software package is component \(ComponentID.runtime), named rampartd")
        }
        try Self.checkExecutable(payload)
    }

    static func checkExecutable(_ executable: Data) throws {
        guard executable.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else {
            throw ImagePackageError("payload_not_executable", "the system software must be the rampartd executable (an ELF file)")
        }
    }

    /// An uploaded app package, checked as the service checks it before signing: it reads
    /// as a package, is unsigned with none of the service-assigned fields, is an app, and its
    /// manifest and module pass the same checks as `rampart app pack`, with the manifest's
    /// `ComponentId` and `Name` in the metadata.
    public init(uploadedApp data: Data, limits: Limits = Limits()) throws {
        try self.init(zipped: data, limits: limits)
        guard !isSignedOrAssigned else { throw ImagePackageError.alreadySigned }
        guard metadata.kind == .app, let manifestBytes = manifest else {
            throw ImagePackageError(
                "image_kind_unsupported", "only app images are added here; system software is published with `rampart os publish`")
        }
        let manifest = try AppManifest(json: manifestBytes)
        guard manifest.componentId == metadata.componentId, manifest.name == metadata.name else {
            throw ImagePackageError(
                "package_invalid", "the metadata's componentId and name must be the manifest's ComponentId and Name")
        }
        try WasmPayloadCheck.check(payload, manifest: manifest)
    }

    /// Whether the package carries a signature or any field only the service sets.
    var isSignedOrAssigned: Bool {
        signature != nil || metadata.imageId != nil || metadata.tenantId != nil || metadata.signedAt != nil
    }

    /// The package as ZIP bytes. Entries are written with a fixed date, so packing the same
    /// input twice gives the same file.
    public func zipped() throws -> Data {
        let archive = try Archive(accessMode: .create)
        var entries = [(Self.metadataEntry, metadataBytes)]
        if let manifest { entries.append((Self.manifestEntry, manifest)) }
        entries.append((Self.payloadEntry, payload))
        if let signature { entries.append((Self.signatureEntry, signature)) }
        let date = Date(timeIntervalSince1970: 315_532_800)  // 1980-01-01, the ZIP epoch
        for (name, bytes) in entries {
            try archive.addEntry(
                with: name, type: .file, uncompressedSize: Int64(bytes.count), modificationDate: date,
                compressionMethod: .none
            ) { position, size in
                bytes.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        guard let data = archive.data else { throw ImagePackageError("package_invalid", "the package could not be written") }
        return data
    }

    /// Reads and checks a package (see the type's description for what is refused).
    public init(zipped data: Data, limits: Limits = Limits()) throws {
        guard data.count <= limits.systemSoftware + 4 * limits.smallEntry else {
            throw ImagePackageError("package_too_large", "the package is \(data.count) bytes; at most \(limits.systemSoftware) fit")
        }
        let archive: Archive
        do {
            archive = try Archive(data: data, accessMode: .read)
        } catch {
            throw ImagePackageError("package_invalid", "the package is not a ZIP file")
        }
        var contents: [String: Data] = [:]
        for entry in archive {
            let name = entry.path
            guard [Self.metadataEntry, Self.manifestEntry, Self.payloadEntry, Self.signatureEntry].contains(name) else {
                throw ImagePackageError("package_entry_unexpected", "unexpected entry '\(name.prefix(64))' in the package")
            }
            guard contents[name] == nil else {
                throw ImagePackageError("package_entry_duplicate", "the package holds '\(name)' twice")
            }
            guard entry.type == .file else {
                throw ImagePackageError("package_entry_unexpected", "'\(name)' is not a regular file")
            }
            guard !entry.isCompressed else {
                throw ImagePackageError("package_entry_compressed", "'\(name)' is compressed; package entries are stored as they are")
            }
            let cap = name == Self.payloadEntry ? limits.systemSoftware : limits.smallEntry
            guard entry.uncompressedSize <= UInt64(cap) else {
                throw ImagePackageError("package_too_large", "'\(name)' declares \(entry.uncompressedSize) bytes; at most \(cap)")
            }
            var bytes = Data()
            let checksum: CRC32
            do {
                checksum = try archive.extract(entry, skipCRC32: false) { chunk in
                    bytes.append(chunk)
                    guard bytes.count <= Int(entry.uncompressedSize) else {
                        throw ImagePackageError("package_invalid", "'\(name)' holds more than it declares")
                    }
                }
            } catch let error as ImagePackageError {
                throw error
            } catch {
                throw ImagePackageError("package_invalid", "'\(name)' cannot be read: \(error)")
            }
            guard bytes.count == Int(entry.uncompressedSize) else {
                throw ImagePackageError("package_invalid", "'\(name)' holds fewer bytes than it declares")
            }
            // extract computes the CRC but leaves comparing it to the caller.
            guard checksum == entry.checksum else {
                throw ImagePackageError("package_invalid", "'\(name)' is damaged: its CRC-32 does not match")
            }
            contents[name] = bytes
        }
        guard let metadataBytes = contents[Self.metadataEntry], let payload = contents[Self.payloadEntry] else {
            throw ImagePackageError("package_invalid", "a package holds \(Self.metadataEntry) and \(Self.payloadEntry)")
        }
        let metadata: ImagePackageMetadata
        do {
            metadata = try JSONDecoder.rampart.decode(ImagePackageMetadata.self, from: metadataBytes)
        } catch {
            throw ImagePackageError("package_invalid", "\(Self.metadataEntry) is not image metadata: \(error)")
        }
        guard metadata.schemaVersion == ImagePackageMetadata.currentSchemaVersion else {
            throw ImagePackageError("package_invalid", "metadata schemaVersion \(metadata.schemaVersion) is not supported")
        }
        let kindCap = metadata.kind == .app ? limits.app : limits.systemSoftware
        guard payload.count <= kindCap else {
            throw ImagePackageError("package_too_large", "the payload is \(payload.count) bytes; an \(metadata.kind.rawValue) image holds at most \(kindCap)")
        }
        guard Self.digest(payload) == metadata.payload else {
            throw ImagePackageError("payload_hash_mismatch", "the payload is not the one the metadata describes")
        }
        let manifest = contents[Self.manifestEntry]
        switch (metadata.kind, manifest, metadata.manifest) {
        case (.app, let bytes?, let described?):
            guard Self.digest(bytes) == described else {
                throw ImagePackageError("payload_hash_mismatch", "the manifest is not the one the metadata describes")
            }
        case (.systemSoftware, nil, nil): break
        default:
            throw ImagePackageError("package_invalid", "an app package holds a manifest, a system-software package none")
        }
        _ = try Self.checkedVersion(metadata.version)
        _ = try Self.checkedSecurityVersion(metadata.securityVersion)
        self.init(
            metadataBytes: metadataBytes, metadata: metadata, manifest: manifest, payload: payload,
            signature: contents[Self.signatureEntry])
    }

    init(metadataBytes: Data, metadata: ImagePackageMetadata, manifest: Data?, payload: Data, signature: Data?) {
        self.metadataBytes = metadataBytes
        self.metadata = metadata
        self.manifest = manifest
        self.payload = payload
        self.signature = signature
    }

    static func digest(_ data: Data) -> ImageEntryDigest {
        ImageEntryDigest(sha256: SHA256.hash(data: data).hexString, length: data.count)
    }

    static func encode(_ metadata: ImagePackageMetadata) throws -> Data {
        let encoder = JSONEncoder.rampart
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(metadata)
    }

    /// 1–64 letters, digits, `.`, `-`, `+`, `_` (the release version rule).
    static func checkedVersion(_ version: String) throws -> String {
        guard isValidVersion(version) else {
            throw ImagePackageError("package_invalid", "version '\(version.prefix(64))' must be 1–64 letters, digits, '.', '-', '+' or '_'")
        }
        return version
    }

    /// 0…65535: a TPM NV counter moves by one per command, so a device can catch up.
    static func checkedSecurityVersion(_ value: Int) throws -> Int {
        guard (0...65_535).contains(value) else {
            throw ImagePackageError("package_invalid", "the security version must be between 0 and 65535")
        }
        return value
    }
}
