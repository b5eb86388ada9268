public import Foundation
public import Hummingbird
import HummingbirdTLS
public import Logging
import NIOCore
import RampartModel
import RampartPKI
import X509
public import ServiceLifecycle

/// The Security Service, assembled: storage opened and migrated, CAs loaded (or created
/// on first start), the TLS identity ready, and the HTTP application built.
///
/// ```swift
/// let database = try await SecurityService.openDatabase(configuration, logger: logger)
/// let service = try await SecurityService.prepare(configuration, database: database, logger: logger)
/// try await service.makeApplication().runService()
/// ```
public struct SecurityService: Sendable {
    public let configuration: ServerConfiguration
    public let api: API
    let tls: ServerTLS
    /// The operator token created on first start; `nil` on every later start.
    public let bootstrapToken: String?
    public var rootCAFingerprint: String { api.pki.root.certificate.sha256Fingerprint }
    public var rootCAPEM: String { api.pki.root.certificate.pemString }
    public var serverCertificateFingerprint: String { tls.certificateFingerprint }

    /// SQLite in the data directory, or PostgreSQL when a URL is configured.
    public static func openDatabase(_ configuration: ServerConfiguration, logger: Logger) async throws -> any Database {
        if let url = configuration.databaseURL {
            return try PostgresDatabase(url: url, logger: logger)
        }
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        return try await SQLiteDatabase.open(path: "\(configuration.dataDirectory)/rampart.sqlite", logger: logger)
    }

    /// Opens the configured database, keeps it usable while `body` runs (running the
    /// PostgreSQL pool beside it), and closes it afterwards, whether `body` succeeds or not.
    public static func withDatabase<T: Sendable>(
        _ configuration: ServerConfiguration, logger: Logger, _ body: (any Database) async throws -> T
    ) async throws -> T {
        let database = try await openDatabase(configuration, logger: logger)
        do {
            let result: T
            if let pool = database.service {
                result = try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await pool.run() }
                    defer { group.cancelAll() }
                    return try await body(database)
                }
            } else {
                result = try await body(database)
            }
            try await database.close()
            return result
        } catch {
            try? await database.close()
            throw error
        }
    }

    /// Migrates the schema, loads or creates the CAs, issues the bootstrap token on first
    /// start and prepares TLS. The database's own service must already be running.
    public static func prepare(
        _ configuration: ServerConfiguration, database: any Database, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) async throws -> SecurityService {
        ServiceMetrics.bootstrap()
        let custody = try keyCustody(configuration, engine: database.engine)
        try await database.waitUntilReachable(logger: logger)
        let applied = try await Schema.migrate(database, now: now())
        for migration in applied {
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
        let pki = try await ServicePKI.bootstrap(database: database, custody: custody, now: now())
        func anchors(_ paths: [String], flag: String) throws -> [Certificate] {
            try paths.flatMap { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                    let certificates = try? certificates(fromPEMBundle: text), !certificates.isEmpty
                else { throw ConfigurationError("\(path) holds no PEM certificate for \(flag)") }
                return certificates
            }
        }
        var api = API(
            database: database, pki: pki,
            genuineness: Genuineness(
                manufacturers: try anchors(configuration.manufacturerCAPaths, flag: "--manufacturer-ca"),
                tpmVendors: try anchors(configuration.tpmVendorCAPaths, flag: "--tpm-vendor-ca")),
            now: now, logger: logger, nonces: AttestationNonces(key: custody.attestationNonceKey(), keepSpentInMemory: database.engine == .sqlite))
        api.errorRetention = TimeInterval(configuration.errorRetentionDays) * 86_400
        let bootstrapToken = try await issueBootstrapToken(api: api, file: configuration.bootstrapTokenFile)
        let tls = try ServerTLS.make(configuration: configuration, pki: pki, now: now())
        return SecurityService(configuration: configuration, api: api, tls: tls, bootstrapToken: bootstrapToken)
    }

    /// The Hummingbird application serving the API over TLS 1.3, with the tenant-CA
    /// rotation job beside it.
    public func makeApplication(
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            server: try .tls(
                .http1(),
                configuration: TLSChannelConfiguration(
                    tlsConfiguration: tls.configuration,
                    customVerificationCallback: ServerTLS.deviceChainVerifier(intermediate: api.pki.intermediate.certificate))),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "rampart"),
            services: [TenantCARotation(api: api), FailureReportRetention(api: api)],
            onServerRunning: onServerRunning,
            logger: api.logger
        )
    }

    /// The router alone, for in-process tests (`app.test(.router)`).
    public func makeRouter() -> Router<RampartRequestContext> {
        let router = Router(context: RampartRequestContext.self)
        router.add(middleware: ErrorMiddleware(routes: RouteTable(api.endpoints)))
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: TokenAuthenticator(database: api.database, now: api.now))
        router.add(middleware: DeviceAuthenticator(api: api))
        api.register(on: router)
        return router
    }

    private static func keyCustody(_ configuration: ServerConfiguration, engine: DatabaseEngine) throws -> KeyCustody {
        switch engine {
        case .sqlite:
            let directory = "\(configuration.dataDirectory)/pki"
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return .files(directory: directory)
        case .postgres:
            guard let key = configuration.keyEncryptionKey else {
                throw ConfigurationError(
                    "PostgreSQL mode keeps CA keys in the database sealed with a key-encryption key: set RAMPART_KEY_ENCRYPTION_KEY or --key-encryption-key-file (32 bytes as 64 hex characters; `openssl rand -hex 32` makes one)"
                )
            }
            return .sealed(try KeySealer(encoded: key))
        }
    }

    /// On the very first start (of any node), creates an operator token valid for 7 days.
    private static func issueBootstrapToken(api: API, file: String?) async throws -> String? {
        let now = api.now()
        let token = try await api.database.transaction { db -> String? in
            let claimed = try await db.query(
                "INSERT INTO service_state (key, value, created_at) VALUES ('bootstrap-token', 'issued', $1) ON CONFLICT (key) DO NOTHING RETURNING key",
                .of(now))
            guard !claimed.isEmpty else { return nil }
            let issued = try await api.issueToken(
                db: db, tenant: nil, user: nil, name: "bootstrap operator token", days: APIToken.bootstrapLifetimeDays,
                now: now)
            try await db.appendAudit(
                tenant: nil, actor: "rampart-server", action: "operator-token.bootstrap",
                target: "token/\(issued.token.id)", outcome: "success", at: now)
            return issued.secret
        }
        if let token, let file { try SecretFile.write(token + "\n", to: file) }
        return token
    }
}

/// Renews tenant CAs as they near expiry: checks at start and then twice a day.
struct TenantCARotation: Service {
    let api: API

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let renewed = try await api.pki.rotateTenantCAs(database: api.database, now: api.now())
                for tenant in renewed {
                    api.logger.info("renewed tenant CA", metadata: ["tenant.id": "\(tenant)"])
                }
            } catch {
                api.logger.error("tenant CA rotation failed; will retry", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(12 * 3600)) }
        }
    }
}
