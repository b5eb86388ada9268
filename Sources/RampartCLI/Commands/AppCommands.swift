import ArgumentParser
import Foundation
import RampartImage
import RampartModel

struct AppCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app",
        abstract: "Build app image packages; make developer keys for sideloading.",
        subcommands: [Pack.self, Keygen.self]
    )

    struct Pack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pack an app's manifest and WebAssembly module into an image package.",
            discussion: """
                Checks the manifest (known keys only, a ComponentId, a .wasm EntryPoint, a memory \
                limit) and the module (it decodes, exports _start, imports only from \
                wasi_snapshot_preview1 and rampart), then writes an unsigned package: a ZIP of \
                metadata.json, manifest.json and payload, all stored uncompressed. Upload it with \
                `rampart image add`; the service signs it. With --sign-with the package is signed \
                with a developer key instead, for `rampart device sideload` onto a device whose \
                development capability lists that key; such a package cannot be added as an image.
                """)
        @Flag(help: "Print machine-readable JSON.") var json = false
        @Option(help: "The app manifest (JSON).") var manifest: String
        @Option(help: "The WebAssembly module (wasm32-wasi).") var wasm: String
        @Option(help: "The image's version, e.g. 1.2.0.") var version: String
        @Option(name: .customLong("security-version"), help: "Anti-rollback security version (0–65535).") var securityVersion = 1
        @Option(help: "The package file to write.") var out: String
        @Option(name: .customLong("sign-with"), help: "A developer key (from `rampart app keygen`) to sign the package for sideloading.")
        var signWith: String?

        func run() async throws {
            let developerKey = try signWith.map { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("cannot read \(path)") }
                return text
            }
            guard let manifestBytes = FileManager.default.contents(atPath: manifest) else { throw CLIError("cannot read \(manifest)") }
            guard let wasmBytes = FileManager.default.contents(atPath: wasm) else { throw CLIError("cannot read \(wasm)") }
            try writePackage(to: out, json: json) {
                let package = try ImagePackage.app(manifest: manifestBytes, wasm: wasmBytes, version: version, securityVersion: securityVersion)
                return try developerKey.map { try package.signedByDeveloper(privateKeyPEM: $0, at: Date()) } ?? package
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
