import ArgumentParser
import Crypto
import Foundation
import RampartModel
import RampartPKI
import SwiftASN1
import X509

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Save a service URL and API token, pinning the service's root CA.",
        discussion: """
            The service prints its root CA's SHA-256 fingerprint when it starts. With \
            --fingerprint, the CLI fetches the root certificate, checks it against that \
            fingerprint and trusts only it from then on. With --ca-file it trusts the given \
            PEM. With neither it keeps the root pinned at an earlier login, or, on a first login, \
            uses the system's trust store (for an operator's own certificate).
            The token is checked with the service before anything is saved.
            """
    )

    @OptionGroup var global: GlobalOptions
    @Option(help: "API token (rpt_…). Default: $RAMPART_TOKEN.") var token: String?
    @Option(help: "SHA-256 fingerprint of the service's root CA (hex, colons allowed).") var fingerprint: String?
    @Option(name: .customLong("ca-file"), help: "PEM file of the CA that signed the service's certificate.") var caFile: String?

    func run() async throws {
        guard let server = global.server else {
            throw ValidationError("--server is required, e.g. --server https://rampart.example.com:8443")
        }
        guard let token = token ?? GlobalOptions.environmentToken else {
            throw ValidationError("--token is required (or set RAMPART_TOKEN)")
        }
        var configuration = try CLIConfiguration.load(from: global.configurationPath)
        // Without a new pin, keep trusting the root CA pinned at an earlier login.
        let pinned = fingerprint == nil && caFile == nil ? configuration.rootCAPEM : nil
        let result = try await Self.login(
            server: server, token: token, fingerprint: fingerprint, caFile: caFile, pinnedRootPEM: pinned)
        configuration.server = server
        configuration.token = token
        configuration.rootCAPEM = result.rootPEM
        configuration.tenantId = result.whoAmI.tenantId
        try configuration.save(to: global.configurationPath)
        try global.emit(result.whoAmI) { who in
            let scope = who.tenantId.map { "\(who.role) of tenant \($0)" } ?? "service operator"
            return "Logged in to \(server) as \(who.principal) (\(scope)). Saved to \(global.configurationPath)."
        }
    }

    struct Result: Sendable {
        let whoAmI: WhoAmI
        let rootPEM: String?
    }

    /// Establishes trust in the server and checks the token. Shared with `rampart demo`.
    static func login(
        server: String, token: String, fingerprint: String?, caFile: String?, pinnedRootPEM: String? = nil
    ) async throws -> Result {
        var rootPEM = pinnedRootPEM
        if let fingerprint {
            rootPEM = try await pinnedRoot(server: server, fingerprint: fingerprint)
        } else if let caFile {
            guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8) else {
                throw CLIError("cannot read \(caFile)")
            }
            rootPEM = pem
        }
        let who = try await APIClient.with(server: server, token: token, trustRootPEM: rootPEM) { client in
            try await client.whoAmI()
        }
        return Result(whoAmI: who, rootPEM: rootPEM)
    }

    /// Fetches the service's root certificate and returns it only if its SHA-256
    /// fingerprint is `fingerprint` (hex, colons allowed).
    public static func pinnedRoot(server: String, fingerprint: String, timeout: Duration = .seconds(60)) async throws -> String {
        let expected = fingerprint.replacingOccurrences(of: ":", with: "").lowercased()
        let pem = try await APIClient.with(server: server, token: nil, trustRootPEM: nil, insecure: true, timeout: timeout) { client in
            try await client.rootCertificatePEM()
        }
        guard let certificate = try? Certificate(pemEncoded: pem) else {
            throw CLIError("\(server) did not serve a root certificate at /v1/pki/root")
        }
        guard certificate.sha256Fingerprint == expected else {
            throw CLIError(
                "the root CA served by \(server) has fingerprint \(certificate.sha256Fingerprint), not \(expected): refusing to trust it"
            )
        }
        return pem
    }
}

struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show who the saved token acts as.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let who = try await global.withClient { try await $0.whoAmI() }
        try global.emit(who) { who in
            details([
                ("principal", who.principal), ("role", who.role), ("tenant", who.tenantId?.description ?? "-"),
                ("token", who.tokenId.description),
            ])
        }
    }
}
