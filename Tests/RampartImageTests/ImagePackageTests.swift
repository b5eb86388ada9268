import Foundation
@testable import RampartImage
import RampartModel
import RampartTestSupport
import Testing
import ZIPFoundation

@Suite struct ImagePackageTests {
    static let componentId = ComponentID.random()
    static func manifest(_ extra: String = "", limits: String = #"{"MemoryKB": 1024}"#) -> Data {
        Data(
            """
            {"SchemaVersion": 1, "Name": "telemetry", "ComponentId": "\(componentId)", "EntryPoint": "app.wasm",
             "Capabilities": {"AllowedConnections": ["telemetry.example.com"], "MutableStorage": {"SizeKB": 64}\(extra)},
             "Limits": \(limits)}
            """.utf8)
    }

    @Test func packsAndReadsBackTheSameBytes() throws {
        let package = try ImagePackage.app(manifest: Self.manifest(), wasm: Wasm.command, version: "1.2.0", securityVersion: 3)
        #expect(package.metadata.kind == .app)
        #expect(package.metadata.componentId == Self.componentId)
        #expect(package.metadata.imageId == nil && package.metadata.signedAt == nil)
        let zipped = try package.zipped()
        #expect(try package.zipped() == zipped, "packing is reproducible")
        let read = try ImagePackage(zipped: zipped)
        #expect(read == package)
        #expect(read.metadata.payload.length == Wasm.command.count)
    }

    @Test func tamperedOrMismatchedContentIsRefused() throws {
        let package = try ImagePackage.app(manifest: Self.manifest(), wasm: Wasm.command, version: "1.2.0", securityVersion: 3)
        // A byte changed in the file: the entry's CRC no longer matches.
        var zipped = try package.zipped()
        let offset = try #require(zipped.range(of: Data("_start".utf8))).lowerBound
        zipped[offset] ^= 0x20
        #expect(throws: ImagePackageError("package_invalid", "")) { try ImagePackage(zipped: zipped) }
        // A consistent ZIP whose payload is not what the metadata describes.
        let swapped = ImagePackage(
            metadataBytes: package.metadataBytes, metadata: package.metadata, manifest: package.manifest,
            payload: Wasm.importing("rampart", "gpio_set"), signature: nil)
        #expect(throws: ImagePackageError("payload_hash_mismatch", "")) { try ImagePackage(zipped: try swapped.zipped()) }
        #expect(throws: ImagePackageError("package_invalid", "")) { try ImagePackage(zipped: Data("not a zip".utf8)) }
    }

    /// ZIPs a package's entries the way an attacker might arrange them.
    func zip(_ entries: [(String, Data, CompressionMethod)]) throws -> Data {
        let archive = try Archive(accessMode: .create)
        for (name, bytes, method) in entries {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(bytes.count), compressionMethod: method) {
                position, size in bytes.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return try #require(archive.data)
    }

    @Test func entriesAreTakenByExactNameOnceEachAndStored() throws {
        let package = try ImagePackage.app(manifest: Self.manifest(), wasm: Wasm.command, version: "1.2.0", securityVersion: 3)
        let good: [(String, Data, CompressionMethod)] = [
            ("metadata.json", package.metadataBytes, .none), ("manifest.json", package.manifest!, .none),
            ("payload", package.payload, .none),
        ]
        _ = try ImagePackage(zipped: try zip(good))
        #expect(throws: ImagePackageError("package_entry_unexpected", "")) {
            try ImagePackage(zipped: try zip(good + [("../payload", Data("x".utf8), .none)]))
        }
        #expect(throws: ImagePackageError("package_entry_unexpected", "")) {
            try ImagePackage(zipped: try zip(good + [("Payload", Data("x".utf8), .none)]))
        }
        #expect(throws: ImagePackageError("package_entry_duplicate", "")) {
            try ImagePackage(zipped: try zip(good + [("payload", Wasm.library, .none)]))
        }
        #expect(throws: ImagePackageError("package_entry_compressed", "")) {
            try ImagePackage(zipped: try zip([good[0], good[1], ("payload", package.payload, .deflate)]))
        }
        #expect(throws: ImagePackageError("package_invalid", "")) { try ImagePackage(zipped: try zip([good[0], good[1]])) }
        var small = ImagePackage.Limits()
        small.smallEntry = 16
        #expect(throws: ImagePackageError("package_too_large", "")) { try ImagePackage(zipped: try zip(good), limits: small) }
    }

    @Test func theWasmCheckRefusesWhatCannotRunAsAnApp() throws {
        func pack(_ wasm: Data) throws -> ImagePackage {
            try ImagePackage.app(manifest: Self.manifest(), wasm: wasm, version: "1.0.0", securityVersion: 1)
        }
        _ = try pack(Wasm.importing("rampart", "gpio_set"))
        _ = try pack(Wasm.importing("wasi_snapshot_preview1"))
        #expect(throws: ImagePackageError("wasm_import_unknown", "")) { try pack(Wasm.importing("rampart", "reboot")) }
        #expect(throws: ImagePackageError("wasm_invalid", "")) { try pack(Data("not wasm".utf8)) }
        #expect(throws: ImagePackageError("wasm_invalid", "")) { try pack(Data(Wasm.command.dropLast(2))) }
        #expect(throws: ImagePackageError("wasm_import_unknown", "")) { try pack(Wasm.importing("env")) }
        #expect(throws: ImagePackageError("wasm_no_entry_point", "")) { try pack(Wasm.library) }
    }

    @Test func theManifestIsCheckedStrictly() throws {
        func pack(_ manifest: Data) throws {
            _ = try ImagePackage.app(manifest: manifest, wasm: Wasm.command, version: "1.0.0", securityVersion: 1)
        }
        #expect(throws: ImagePackageError("manifest_invalid", "")) { try pack(Self.manifest(#", "Camera": true"#)) }
        #expect(throws: ImagePackageError("manifest_invalid", "")) { try pack(Self.manifest(limits: #"{"MemoryKB": 1}"#)) }
        #expect(throws: ImagePackageError("manifest_invalid", "")) {
            try pack(Self.manifest(limits: #"{"MemoryKB": 1024, "Threads": 4}"#))
        }
        #expect(throws: ImagePackageError("manifest_invalid", "")) {
            try pack(Data(String(decoding: Self.manifest(), as: UTF8.self).replacingOccurrences(of: "\(Self.componentId)", with: "nope").utf8))
        }
        #expect(throws: ImagePackageError("manifest_invalid", "")) { try pack(Data("[]".utf8)) }
        #expect(throws: ImagePackageError("package_invalid", "")) {
            _ = try ImagePackage.app(manifest: Self.manifest(), wasm: Wasm.command, version: "1 0", securityVersion: 1)
        }
        #expect(throws: ImagePackageError("package_invalid", "")) {
            _ = try ImagePackage.app(manifest: Self.manifest(), wasm: Wasm.command, version: "1.0", securityVersion: 70_000)
        }
    }
}
