import ArgumentParser
import Foundation
import RampartImage
import RampartModel

struct AppCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app",
        abstract: "Build app image packages.",
        subcommands: [Pack.self]
    )

    struct Pack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pack an app's manifest and WebAssembly module into an image package.",
            discussion: """
                Checks the manifest (known keys only, a ComponentId, a .wasm EntryPoint, a memory \
                limit) and the module (it decodes, exports _start, imports only from \
                wasi_snapshot_preview1 and rampart), then writes an unsigned package: a ZIP of \
                metadata.json, manifest.json and payload, all stored uncompressed. Upload it with \
                `rampart image add`; the service signs it.
                """)
        @Flag(help: "Print machine-readable JSON.") var json = false
        @Option(help: "The app manifest (JSON).") var manifest: String
        @Option(help: "The WebAssembly module (wasm32-wasi).") var wasm: String
        @Option(help: "The image's version, e.g. 1.2.0.") var version: String
        @Option(name: .customLong("security-version"), help: "Anti-rollback security version (0–65535).") var securityVersion = 1
        @Option(help: "The package file to write.") var out: String

        func run() async throws {
            guard let manifestBytes = FileManager.default.contents(atPath: manifest) else { throw CLIError("cannot read \(manifest)") }
            guard let wasmBytes = FileManager.default.contents(atPath: wasm) else { throw CLIError("cannot read \(wasm)") }
            try writePackage(to: out, json: json) {
                try ImagePackage.app(manifest: manifestBytes, wasm: wasmBytes, version: version, securityVersion: securityVersion)
            } describe: { metadata in
                "Packed \(metadata.name) \(metadata.version) (component \(metadata.componentId), security version \(metadata.securityVersion)) into \(out): payload \(metadata.payload.length) bytes, SHA-256 \(metadata.payload.sha256)."
            }
        }
    }
}

/// Makes a package, writes it to `out` and says what it holds (the metadata as JSON with
/// `json`); a refused input or an unwritable file is one line naming why.
func writePackage(
    to out: String, json: Bool, _ make: () throws -> ImagePackage, describe: (ImagePackageMetadata) -> String
) throws {
    let package: ImagePackage
    do {
        package = try make()
        try package.zipped().write(to: URL(fileURLWithPath: out))
    } catch let error as ImagePackageError {
        throw CLIError("\(error.message) [\(error.code)]")
    } catch {
        throw CLIError("cannot write \(out): \(error.localizedDescription)")
    }
    if json {
        let encoder = JSONEncoder.rampart
        encoder.outputFormatting.insert(.prettyPrinted)
        print(String(decoding: try encoder.encode(package.metadata), as: UTF8.self))
    } else {
        print(describe(package.metadata))
    }
}
