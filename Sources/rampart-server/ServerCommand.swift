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

            Settings come from flags, then the environment (RAMPART_DATA_DIR, RAMPART_HOST, \
            RAMPART_PORT, RAMPART_DATABASE_URL, RAMPART_KEY_ENCRYPTION_KEY or \
            RAMPART_KEY_ENCRYPTION_KEY_FILE, RAMPART_TLS_CERT, RAMPART_TLS_KEY, RAMPART_HOSTNAMES \
            (comma-separated), RAMPART_LOG_LEVEL), then a JSON file given by --config or \
            RAMPART_CONFIG_FILE whose keys are dataDirectory, host, port, database, \
            keyEncryptionKeyFile, tlsCertificate, tlsKey, hostnames, bootstrapTokenFile, logLevel.
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

    @Option(name: .customLong("manufacturer-ca"), help: "PEM file of a device manufacturer CA: it signs devices' identity certificates (repeatable).")
    var manufacturerCAs: [String] = []

    @Option(name: .customLong("tpm-vendor-ca"), help: "PEM file of a TPM vendor CA: it signs TPM endorsement-key certificates (repeatable).")
    var tpmVendorCAs: [String] = []

    @Option(name: .customLong("error-retention-days"), help: "Days failure reports are kept (default 14).")
    var errorRetentionDays: Int?

    @Option(name: .customLong("config"), help: "JSON settings file (also $RAMPART_CONFIG_FILE); flags and environment win over it.")
    var configFile: String?

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
        let flags = ServerSettings(
            dataDirectory: dataDirectory, host: host, port: port, database: databaseURL,
            keyEncryptionKeyFile: keyEncryptionKeyFile, tlsCertificate: tlsCertificate, tlsKey: tlsKey,
            hostnames: hostnames.isEmpty ? nil : hostnames, bootstrapTokenFile: bootstrapTokenFile, logLevel: logLevel,
            manufacturerCAs: manufacturerCAs.isEmpty ? nil : manufacturerCAs, tpmVendorCAs: tpmVendorCAs.isEmpty ? nil : tpmVendorCAs,
            errorRetentionDays: errorRetentionDays)
        var layers = [flags, try ServerSettings(environment: environment)]
        if let file = configFile ?? environment["RAMPART_CONFIG_FILE"] {
            layers.append(try ServerSettings(file: file))
        }
        return try ServerConfiguration(layers: layers, environment: environment)
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
