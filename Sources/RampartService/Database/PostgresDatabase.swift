import Foundation
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO
public import ServiceLifecycle

/// The scale-out engine: several stateless service nodes over one PostgreSQL.
public final class PostgresDatabase: Database {
    public let engine = DatabaseEngine.postgres
    private let client: PostgresClient
    private let logger: Logger
    private let probe: PostgresConnection.Configuration
    private let endpoint: String
    public var service: (any Service)? { client }

    /// Connects to `url` (`postgres://user:password@host:port/database`, optionally
    /// `?sslmode=require`). The pool only opens connections once ``service`` runs.
    public init(url: String, logger: Logger) throws {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else {
            throw ConfigurationError("'\(url)' is not a PostgreSQL URL (postgres://user:password@host:port/database)")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value
        let tls: PostgresClient.Configuration.TLS =
            sslmode == "require" ? .require(.makeClientConfiguration()) : .disable
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: components.user ?? "postgres",
            password: components.password,
            database: database.isEmpty ? nil : database,
            tls: tls
        )
        configuration.options.maximumConnections = 20
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        probe = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
            password: components.password, database: database.isEmpty ? nil : database,
            tls: sslmode == "require" ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable)
        endpoint = "\(host):\(components.port ?? 5432)"
        self.logger = logger
    }

    public func read<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(PostgresExecutor(connection: connection, logger: logger))
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(PostgresExecutor(connection: connection, logger: logger))
            }
        } catch let error as PostgresTransactionError {
            // The transaction was rolled back; what matters to the caller is why.
            if let reason = error.closureError { throw reason }
            throw error
        }
    }

    /// Tries one connection every 2 seconds for up to 30 seconds, so a service started
    /// together with its database waits for it, and one pointed at the wrong place says so.
    public func waitUntilReachable(logger: Logger) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: probe, id: attempt, logger: logger)
                try await connection.close()
                return
            } catch {
                let reason = Self.describe(error)
                guard ContinuousClock.now < deadline else {
                    throw ConfigurationError("cannot reach PostgreSQL at \(endpoint) (tried for 30 s): \(reason)")
                }
                logger.warning("waiting for PostgreSQL", metadata: ["endpoint": "\(endpoint)", "error": "\(reason)"])
                try await Task.sleep(for: .seconds(2))
            }
        }
    }

    public func close() async throws {}

    /// PSQLError hides its details from `description` (they may hold query data); the code
    /// and the underlying network or server error are what an operator needs.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return String(describing: error) }
        var parts = ["\(error.code)"]
        if let underlying = error.underlying { parts.append("\(underlying)") }
        if let message = error.serverInfo?[.message] { parts.append(message) }
        return parts.joined(separator: ": ")
    }
}

struct PostgresExecutor: SQLExecutor {
    let connection: PostgresConnection
    let logger: Logger

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            switch bind {
            case .null: bindings.appendNull()
            case .int(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        let sequence = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        var rows: [SQLRow] = []
        for try await row in sequence {
            var values: [String: SQLValue] = [:]
            for cell in row {
                values[cell.columnName] = try Self.value(of: cell)
            }
            rows.append(SQLRow(values: values))
        }
        return rows
    }

    static func value(of cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
        case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea: return .blob(Array(try cell.decode(ByteBuffer.self).readableBytesView))
        case .numeric:
            // SUM over BIGINT is NUMERIC in PostgreSQL; the values read back are whole numbers.
            let decimal = try cell.decode(Decimal.self)
            guard let value = Int64(exactly: NSDecimalNumber(decimal: decimal).doubleValue) else {
                throw DatabaseError(description: "a NUMERIC value (\(decimal)) is not a 64-bit integer")
            }
            return .int(value)
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// A setting that cannot be used, said in a way the operator can act on.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
