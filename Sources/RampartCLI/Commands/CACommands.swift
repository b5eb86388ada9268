import ArgumentParser
import Foundation
import RampartModel

struct CACommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The tenant's certificate authorities.",
        subcommands: [DownloadChain.self, List.self]
    )

    struct DownloadChain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "download-chain",
            abstract: "Save the tenant's CA chain as PEM: tenant CA(s), intermediate, root.",
            discussion: """
                Install it on servers that authenticate devices (for example nginx's \
                ssl_client_certificate). During a tenant CA rotation it holds both tenant CAs.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "File to write.") var out: String

        func run() async throws {
            let pem = try await global.withClient { client in try await client.chainPEM(tenant: try await global.tenantID(client)) }
            do {
                try pem.write(toFile: out, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError("cannot write \(out): \(error.localizedDescription)")
            }
            let count = pem.components(separatedBy: "BEGIN CERTIFICATE").count - 1
            try global.done("Wrote \(count) certificates to \(out).", ["file": out, "certificates": "\(count)"])
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's CA certificates and their lifetimes.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let cas = try await global.withClient { client in
                try await client.certificateAuthorities(tenant: try await global.tenantID(client))
            }
            try global.emit(cas) { cas in
                table(
                    ["KIND", "NOT BEFORE", "NOT AFTER", "ISSUES FROM", "SHA-256"],
                    cas.map { [$0.kind, date($0.notBefore), date($0.notAfter), date($0.activatesAt), $0.sha256Fingerprint] })
            }
        }
    }
}

struct AuditCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the tenant's audit log (Administrator or Reader).",
        subcommands: [List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List audit entries, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "How many entries (1 to 10000).") var limit: Int = 50

        func run() async throws {
            let entries = try await global.withClient { client in
                try await client.auditEntries(tenant: try await global.tenantID(client), limit: limit)
            }
            try global.emit(entries) { entries in
                table(
                    ["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
                    entries.map { [date($0.time), $0.actor, $0.action, $0.target, $0.outcome] })
            }
        }
    }
}
