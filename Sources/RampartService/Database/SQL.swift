import Foundation
public import Logging
import RampartModel
public import ServiceLifecycle

/// A value bound into, or read out of, a SQL statement. Only the types both engines
/// store the same way: 64-bit integers, text, bytes.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case text(String)
    case blob([UInt8])
}

extension SQLValue {
    static func of(_ text: String?) -> SQLValue { text.map(SQLValue.text) ?? .null }
    /// Dates are stored as whole seconds since 1970, which both engines compare and sort.
    static func of(_ date: Date) -> SQLValue { .int(Int64(date.timeIntervalSince1970.rounded(.down))) }
    /// Identifiers are stored as their canonical text.
    static func of(_ id: some EntityID) -> SQLValue { .text(id.description) }
    static func of(_ id: DeviceID) -> SQLValue { .text(id.hex) }
}

/// One result row, read by column name.
public struct SQLRow: Sendable {
    let values: [String: SQLValue]

    func text(_ column: String) throws -> String {
        guard case .text(let value) = values[column] else { throw DatabaseError.column(column, expected: "text") }
        return value
    }

    func optionalText(_ column: String) throws -> String? {
        if case .null = values[column] ?? .null { return nil }
        return try text(column)
    }

    func int(_ column: String) throws -> Int64 {
        guard case .int(let value) = values[column] else { throw DatabaseError.column(column, expected: "integer") }
        return value
    }

    func date(_ column: String) throws -> Date {
        Date(timeIntervalSince1970: TimeInterval(try int(column)))
    }

    func optionalDate(_ column: String) throws -> Date? {
        if case .null = values[column] ?? .null { return nil }
        return try date(column)
    }

    func blob(_ column: String) throws -> [UInt8]? {
        switch values[column] ?? .null {
        case .null: return nil
        case .blob(let bytes): return bytes
        default: throw DatabaseError.column(column, expected: "bytes")
        }
    }
}

/// Runs statements. Statements are written once, with `$1`, `$2`, … placeholders, and
/// run unchanged on both engines (SQLite is given `?1`, `?2`, …).
public protocol SQLExecutor: Sendable {
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    func query(_ sql: String, _ binds: SQLValue...) async throws -> [SQLRow] {
        try await query(sql, binds)
    }
}

/// The two storage engines Rampart runs on.
public enum DatabaseEngine: String, Sendable {
    case sqlite, postgres
}

/// Storage: embedded SQLite by default, PostgreSQL for several nodes.
///
/// Every multi-row change goes through ``transaction(_:)``, so a failure part-way
/// leaves nothing half-written.
public protocol Database: Sendable {
    var engine: DatabaseEngine { get }

    /// Runs `body` with a connection outside any explicit transaction (single reads).
    func read<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T

    /// What must run for the database to be usable (the PostgreSQL connection pool), if anything.
    var service: (any Service)? { get }

    /// Returns once the database answers, or throws a ``ConfigurationError`` that says why not.
    func waitUntilReachable(logger: Logger) async throws

    /// Releases connections.
    func close() async throws
}

/// Storage failures. These are the service's faults, never the client's.
public struct DatabaseError: Error, CustomStringConvertible {
    public let description: String

    static func column(_ name: String, expected: String) -> DatabaseError {
        DatabaseError(description: "column \(name) is missing or not \(expected)")
    }
}
