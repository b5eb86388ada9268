import ArgumentParser
import Foundation
import Logging
import NIOCore
import RampartService
import ServiceLifecycle
import UnixSignals

/// `rampart-server`: runs the Rampart Security Service.
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rampart-server",
        abstract: "Run the Rampart Security Service (HTTPS API, PKI, device attestation and updates).",
        discussion: """
            With no options the service keeps everything in ./rampart-data: an SQLite database, \
            the CA keys (files, mode 0600) and a TLS certificate it issues itself from its own CA. \
            On the very first start it prints a bootstrap operator token (valid 7 days) and the \
            root CA fingerprint; give both to `rampart login`.

            For several nodes, point every node at one PostgreSQL with --database (or \
            RAMPART_DATABASE_URL) and give each the same key-encryption key (RAMPART_KEY_ENCRYPTION_KEY \
            or --key-encryption-key-file; `openssl rand -hex 32` makes one): CA keys are then kept \
            in the database, sealed with AES-256-GCM.

            Every option can also be set in the environment: RAMPART_DATA_DIR, RAMPART_HOST, \
            RAMPART_PORT, RAMPART_DATABASE_URL, RAMPART_KEY_ENCRYPTION_KEY, RAMPART_TLS_CERT, \
            RAMPART_TLS_KEY, RAMPART_HOSTNAMES (comma-separated), RAMPART_LOG_LEVEL. Flags win.
            """
    )

    @Option(name: .customLong("data-dir"), help: "Directory for the database, keys and TLS files.")
    var dataDirectory: String?

    @Option(help: "Address to listen on.")
    var host: String?

    @Option(help: "Port to listen on (0 picks a free one).")
    var port: Int?

    @Option(name: .customLong("database"), help: "PostgreSQL URL (postgres://user:password@host:port/db). Default: SQLite in the data directory.")
    var databaseURL: String?

    @Option(name: .customLong("key-encryption-key-file"), help: "File holding the 32-byte key that seals CA keys in PostgreSQL (hex or base64).")
    var keyEncryptionKeyFile: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain to serve instead of a generated one.")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("hostname"), help: "Extra DNS name for the generated certificate (repeatable).")
    var hostnames: [String] = []

    @Option(name: .customLong("bootstrap-token-file"), help: "Also write the first-start bootstrap token to this file (mode 0600).")
    var bootstrapTokenFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    func run() async throws {
        let configuration = try resolve(ProcessInfo.processInfo.environment)
        var logger = Logger(label: "rampart-server")
        logger.logLevel = configuration.logLevel
        print("Rampart Security Service\n\(configuration)")
        let database = try await SecurityService.openDatabase(configuration, logger: logger)
        var services: [any Service] = []
        if let databaseService = database.service { services.append(databaseService) }
        services.append(ServerRunner(configuration: configuration, database: database, logger: logger))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            try await database.close()
        } catch {
            try? await database.close()
            throw error
        }
    }

    func resolve(_ environment: [String: String]) throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = dataDirectory ?? environment["RAMPART_DATA_DIR"] ?? configuration.dataDirectory
        configuration.host = host ?? environment["RAMPART_HOST"] ?? configuration.host
        if let port = try port ?? environment["RAMPART_PORT"].map(parsePort) { configuration.port = port }
        configuration.databaseURL = databaseURL ?? environment["RAMPART_DATABASE_URL"]
        if let file = keyEncryptionKeyFile {
            do {
                configuration.keyEncryptionKey = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read the key-encryption key file \(file)")
            }
        } else {
            configuration.keyEncryptionKey = environment["RAMPART_KEY_ENCRYPTION_KEY"]
        }
        configuration.tlsCertificatePath = tlsCertificate ?? environment["RAMPART_TLS_CERT"]
        configuration.tlsKeyPath = tlsKey ?? environment["RAMPART_TLS_KEY"]
        configuration.hostnames =
            hostnames.isEmpty
            ? (environment["RAMPART_HOSTNAMES"]?.split(separator: ",").map(String.init) ?? []) : hostnames
        configuration.bootstrapTokenFile = bootstrapTokenFile
        if let level = logLevel ?? environment["RAMPART_LOG_LEVEL"] {
            guard let parsed = Logger.Level(rawValue: level) else { throw ValidationError("unknown log level '\(level)'") }
            configuration.logLevel = parsed
        }
        return configuration
    }

    private func parsePort(_ text: String) throws -> Int {
        guard let port = Int(text), (0...65535).contains(port) else { throw ValidationError("RAMPART_PORT '\(text)' is not a port") }
        return port
    }
}

/// Prepares the service once the database is reachable, says how to reach it, and serves.
struct ServerRunner: Service {
    let configuration: ServerConfiguration
    let database: any Database
    let logger: Logger

    func run() async throws {
        let service = try await SecurityService.prepare(configuration, database: database, logger: logger)
        let app = try service.makeApplication { channel in
            let port = channel.localAddress?.port ?? configuration.port
            var lines = [
                "Listening on https://\(configuration.host):\(port) (TLS 1.3)",
                "  server certificate SHA-256: \(service.serverCertificateFingerprint)",
                "  root CA SHA-256:            \(service.rootCAFingerprint)",
            ]
            if let token = service.bootstrapToken {
                lines += [
                    "First start. Bootstrap operator token (shown only now, valid 7 days):",
                    "  \(token)",
                    "Log in with:",
                    "  rampart login --server https://\(configuration.host):\(port) --token \(token) --fingerprint \(service.rootCAFingerprint)",
                ]
            }
            print(lines.joined(separator: "\n"))
            fflush(nil)
        }
        try await app.run()
    }
}
