import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
import SQLiteNIO

/// The embedded engine: one SQLite file in write-ahead-log mode in the data directory.
///
/// One connection, used by one caller at a time: SQLite has a single writer anyway, and
/// serialising here keeps transactions from interleaving.
public final class SQLiteDatabase: Database {
    public let engine = DatabaseEngine.sqlite
    public var service: (any Service)? { nil }
    private let connection: SQLiteConnection
    private let lock = AsyncLock()

    private init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, logger: Logger) async throws -> SQLiteDatabase {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let database = SQLiteDatabase(connection: connection)
        let executor = SQLiteExecutor(connection: connection)
        try await executor.query("PRAGMA journal_mode=WAL", [])
        // In WAL mode, NORMAL syncs at checkpoints rather than at every commit: a crash of the
        // service loses nothing, a power loss may lose the last commits but never corrupts
        // the file. Each attestation commits twice, so FULL would make fsync its ceiling.
        try await executor.query("PRAGMA synchronous=NORMAL", [])
        try await executor.query("PRAGMA foreign_keys=ON", [])
        try await executor.query("PRAGMA busy_timeout=5000", [])
        return database
    }

    public func read<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection)
        return try await lock.withLock { try await body(executor) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection)
        return try await lock.withLock {
            try await executor.query("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(executor)
                try await executor.query("COMMIT", [])
                return result
            } catch {
                try? await executor.query("ROLLBACK", [])
                throw error
            }
        }
    }

    public func waitUntilReachable(logger: Logger) async throws {}

    public func close() async throws {
        try await connection.close()
    }
}

struct SQLiteExecutor: SQLExecutor {
    let connection: SQLiteConnection

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let rows = try await connection.query(Self.numberedPlaceholders(sql), binds.map(Self.data))
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for column in row.columns {
                switch column.data {
                case .integer(let value): values[column.name] = .int(Int64(value))
                case .float(let value): values[column.name] = .int(Int64(value))
                case .text(let value): values[column.name] = .text(value)
                case .blob(let buffer): values[column.name] = .blob(Array(buffer.readableBytesView))
                case .null: values[column.name] = .null
                }
            }
            return SQLRow(values: values)
        }
    }

    /// `$1` → `?1`: SQLite would read `$1` as a *named* parameter numbered by first appearance.
    static func numberedPlaceholders(_ sql: String) -> String {
        var bytes = Array(sql.utf8)
        for index in bytes.indices.dropLast()
        where bytes[index] == UInt8(ascii: "$") && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index + 1]) {
            bytes[index] = UInt8(ascii: "?")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func data(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: .null
        case .int(let value): .integer(SQLiteInt64(value))
        case .text(let value): .text(value)
        case .blob(let bytes): .blob(ByteBuffer(bytes: bytes))
        }
    }
}
