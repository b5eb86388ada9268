import ArgumentParser
import Crypto
import Foundation
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
        subcommands: [Publish.self, List.self, Revoke.self]
    )

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trust a release of the device runtime: its version and the SHA-256 of its executable.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The version rampartd reports, e.g. 0.1.0.") var version: String
        @Option(help: "The rampartd executable of this release; its SHA-256 is the reference value.") var executable: String?
        @Option(help: "Or the SHA-256 itself, in hex.") var measurement: String?
        @Option(help: "The OS feed: retail or retail-eval.") var feed: String = OSFeed.retail.rawValue
        @Option(name: .customLong("security-version"), help: "Anti-rollback security version.") var securityVersion = 1

        func run() async throws {
            let digest: String
            switch (executable, measurement) {
            case (let path?, nil):
                guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
                digest = SHA256.hash(data: data).hexString
            case (nil, let value?): digest = value.lowercased()
            default: throw ValidationError("give exactly one of --executable and --measurement")
            }
            guard let osFeed = OSFeed(rawValue: feed) else {
                throw ValidationError("--feed must be one of \(OSFeed.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let release = try await global.withClient { client in
                try await client.publishRelease(
                    PublishReleaseRequest(version: version, measurement: digest, feed: osFeed, securityVersion: securityVersion))
            }
            try global.emit(release) { "Published system software \($0.version) (\($0.feed.rawValue), SHA-256 \($0.measurement))." }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List published releases, revoked ones marked.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let releases = try await global.withClient { client in try await client.releases() }
            try global.emit(releases) { releases in
                table(
                    ["VERSION", "FEED", "SECURITY VERSION", "PUBLISHED", "STATE", "SHA-256"],
                    releases.map {
                        [$0.version, $0.feed.rawValue, "\($0.securityVersion)", date($0.publishedAt),
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
