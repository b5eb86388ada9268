import ArgumentParser
import Crypto
import Foundation
import RampartImage
import RampartModel

struct OSCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "os",
        abstract: "System-software releases the service trusts (service operator).",
        discussion: """
            A device is attested only while its measured runtime is a published release that \
            nobody revoked. A device running an unknown or revoked release is refused and told \
            to update.
            """,
        subcommands: [Pack.self, Publish.self, List.self, Revoke.self]
    )

    struct Pack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pack a build of the device runtime into a system-software package.",
            discussion: """
                Writes an unsigned package (metadata.json and payload, stored uncompressed) of the \
                rampartd executable. Publish it with `rampart os publish --file`; the service signs it \
                with its system-software key, and devices on the release's feed can then install it.
                """)
        @Flag(help: "Print machine-readable JSON.") var json = false
        @Option(help: "The rampartd executable.") var executable: String
        @Option(help: "The version rampartd reports, e.g. 0.2.0.") var version: String
        @Option(name: .customLong("security-version"), help: "Anti-rollback security version (0–65535).") var securityVersion = 1
        @Option(help: "The package file to write.") var out: String

        func run() async throws {
            guard let bytes = FileManager.default.contents(atPath: executable) else { throw CLIError("cannot read \(executable)") }
            try writePackage(to: out, json: json) {
                try ImagePackage.systemSoftware(executable: bytes, version: version, securityVersion: securityVersion)
            } describe: { metadata in
                "Packed rampartd \(metadata.version) (security version \(metadata.securityVersion)) into \(out): \(metadata.payload.length) bytes, SHA-256 \(metadata.payload.sha256)."
            }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trust a release of the device runtime, and with --file make it deliverable.",
            discussion: """
                With --file, the service checks and signs the package from `rampart os pack` and the \
                release is both a reference value for attestation and an update devices can install. \
                With --executable or --measurement the release is a reference value only; publishing \
                its package later (same version and executable) makes it deliverable.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "A package from `rampart os pack` (version and security version come from it).") var file: String?
        @Option(help: "The version rampartd reports, e.g. 0.1.0 (with --file: must match the package).") var version: String?
        @Option(help: "The rampartd executable of this release; its SHA-256 is the reference value.") var executable: String?
        @Option(help: "Or the SHA-256 itself, in hex.") var measurement: String?
        @Option(help: "The OS feed: retail or retail-eval.") var feed: String = OSFeed.retail.rawValue
        @Option(name: .customLong("security-version"), help: "Anti-rollback security version (with --file: must match).")
        var securityVersion: Int?

        func run() async throws {
            guard let osFeed = OSFeed(rawValue: feed) else {
                throw ValidationError("--feed must be one of \(OSFeed.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let release: SystemSoftwareRelease
            switch (file, executable, measurement) {
            case (let path?, nil, nil):
                guard let bytes = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
                let metadata: ImagePackageMetadata
                do {
                    metadata = try ImagePackage(zipped: bytes).metadata
                } catch let error as ImagePackageError {
                    throw CLIError("\(path): \(error.message) [\(error.code)]")
                }
                if let version, version != metadata.version {
                    throw ValidationError("--version \(version) does not match the package's \(metadata.version)")
                }
                if let securityVersion, securityVersion != metadata.securityVersion {
                    throw ValidationError("--security-version \(securityVersion) does not match the package's \(metadata.securityVersion)")
                }
                release = try await global.withClient { client in try await client.publishReleasePackage(bytes, feed: osFeed) }
            case (nil, let path?, nil), (nil, nil, let path?):
                guard let version else { throw ValidationError("--version is needed with --executable or --measurement") }
                let digest: String
                if executable != nil {
                    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
                    digest = SHA256.hash(data: data).hexString
                } else {
                    digest = path.lowercased()
                }
                release = try await global.withClient { client in
                    try await client.publishRelease(
                        PublishReleaseRequest(version: version, measurement: digest, feed: osFeed, securityVersion: securityVersion ?? 1))
                }
            default: throw ValidationError("give exactly one of --file, --executable and --measurement")
            }
            try global.emit(release) {
                "Published system software \($0.version) (\($0.feed.rawValue), SHA-256 \($0.measurement))\($0.imageId.map { ", deliverable as image \($0)" } ?? ", reference value only")."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List published releases, revoked ones marked.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let releases = try await global.withClient { client in try await client.releases() }
            try global.emit(releases) { releases in
                table(
                    ["VERSION", "FEED", "SECURITY VERSION", "PUBLISHED", "DELIVERABLE", "STATE", "SHA-256"],
                    releases.map {
                        [$0.version, $0.feed.rawValue, "\($0.securityVersion)", date($0.publishedAt), $0.imageId == nil ? "no" : "yes",
                         $0.revokedAt == nil ? "trusted" : "revoked: \($0.revocationReason ?? "")", $0.measurement]
                    })
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a release: devices running it are refused attestation and told to update.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The release version.") var version: String
        @Option(help: "Why, recorded and shown to devices.") var reason: String

        func run() async throws {
            let release = try await global.withClient { client in try await client.revokeRelease(version: version, reason: reason) }
            try global.emit(release) { "Revoked system software \($0.version): \($0.revocationReason ?? "")." }
        }
    }
}
