import CSQLite3
import Foundation
public import Logging
public import ServiceLifecycle

/// The embedded engine: one SQLite file in write-ahead-log mode in the data directory,
/// through Debian's libsqlite3.
///
/// One connection, used by one caller at a time: SQLite has a single writer anyway, and
/// serialising here keeps transactions from interleaving. Statements run on the calling
/// thread (a few microseconds each; with `synchronous=NORMAL` a commit does not wait for
/// the disk), prepared once and kept. sqlite-nio, used before, ran every statement on a
/// thread pool and handed every row back through an event loop: three thread hops per
/// statement, most of an attestation's time (see BENCHMARKS.md).
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
        let connection = try SQLiteConnection(path: path)
        _ = try connection.run("PRAGMA busy_timeout=5000", [])
        // The service is the file's only user: holding its lock for good spares two fcntl
        // calls per transaction, keeps the WAL index in this process's memory, and keeps
        // other processes from reading or writing behind its back. Set before WAL mode so
        // the WAL index never goes to a shared-memory file.
        _ = try connection.run("PRAGMA locking_mode=EXCLUSIVE", [])
        // For a new file: an attestation's commit writes two pages to the log (its row and
        // the by-device index), and a 1 KiB frame costs a quarter of a 4 KiB one to
        // checksum and write. A file made before keeps its page size.
        _ = try connection.run("PRAGMA page_size=1024", [])
        do {
            _ = try connection.run("PRAGMA journal_mode=WAL", [])
        } catch let failure as SQLiteFailure where failure.code & 0xff == SQLITE_BUSY {
            throw ConfigurationError(
                "\(path) is held by another process (a second rampart-server on the same data directory?); one service may use it at a time")
        }
        // In WAL mode, NORMAL syncs at checkpoints rather than at every commit: a crash of the
        // service loses nothing, a power loss may lose the last commits but never corrupts
        // the file. Each attestation commits once to the file (its nonce is in memory), so
        // FULL would make fsync its ceiling.
        _ = try connection.run("PRAGMA synchronous=NORMAL", [])
        // Checkpoint (and sync) after 4 MiB of log, as SQLite's default of 1,000 pages does
        // at its default page size: counted in the 1 KiB pages above, the default would
        // checkpoint four times as often. In pages of this file's size, whichever it has.
        let pageSize = try connection.run("PRAGMA page_size", []).first?.int("page_size") ?? 1024
        _ = try connection.run("PRAGMA wal_autocheckpoint=\(max(1, 4 * 1024 * 1024 / Int(pageSize)))", [])
        _ = try connection.run("PRAGMA foreign_keys=ON", [])
        // Temporary B-trees (sorting, grouping) in memory, not in files.
        _ = try connection.run("PRAGMA temp_store=MEMORY", [])
        return SQLiteDatabase(connection: connection)
    }

    public func read<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection)
        return try await lock.withLock { try await body(executor) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection)
        let connection = connection
        return try await lock.withLock {
            _ = try connection.run("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(executor)
                _ = try connection.run("COMMIT", [])
                return result
            } catch {
                _ = try? connection.run("ROLLBACK", [])
                throw error
            }
        }
    }

    /// Whether the write-ahead log's writes go through ``SQLiteWriteGathering``.
    var walWritesAreGathered: Bool {
        get async throws { try await lock.withLock { connection.walWritesAreGathered } }
    }

    public func waitUntilReachable(logger: Logger) async throws {}

    public func close() async throws {
        try await lock.withLock { connection.close() }
    }
}

struct SQLiteExecutor: SQLExecutor {
    let connection: SQLiteConnection

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try connection.run(sql, binds)
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
}

/// An SQLite failure: the engine's message and result code.
struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { "SQLite error \(code): \(message)" }
}

/// The `sqlite3` handle and its prepared statements.
///
/// `@unchecked Sendable`: it is used only under `SQLiteDatabase`'s lock, one caller at a
/// time, and the handle is opened in serialized (full-mutex) mode besides.
final class SQLiteConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    private var statements: [String: Prepared] = [:]

    /// A prepared statement with its result's column names, read once: the names are the
    /// same for every row until SQLite prepares the statement again (after a schema change,
    /// which can change what `SELECT *` returns), which its re-prepare counter tells.
    private struct Prepared {
        let statement: OpaquePointer
        var columns: [String] = []
        var reprepares: Int32 = -1
    }

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, SQLiteWriteGathering.isRegistered ? SQLiteWriteGathering.vfsName : nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            handle = nil
            throw SQLiteFailure(code: status, message: "cannot open \(path): \(message)")
        }
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    func close() {
        for prepared in statements.values { sqlite3_finalize(prepared.statement) }
        statements = [:]
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    private func failure(_ status: Int32, _ sql: String) -> SQLiteFailure {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "the database is closed"
        return SQLiteFailure(code: status, message: "\(message) (in: \(sql.prefix(120)))")
    }

    /// Whether the open write-ahead log is a file of ``SQLiteWriteGathering``.
    var walWritesAreGathered: Bool {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard let handle, sqlite3_file_control(handle, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) == SQLITE_OK,
            let file, file.pointee.pMethods != nil
        else { return false }
        return SQLiteWriteGathering.gathers(file)
    }

    /// Prepares `sql` for good and keeps it.
    private func prepare(_ sql: String, handle: OpaquePointer) throws -> Prepared {
        var prepared: OpaquePointer?
        let status = sqlite3_prepare_v3(
            handle, SQLiteExecutor.numberedPlaceholders(sql), -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
        guard status == SQLITE_OK, let prepared else { throw failure(status, sql) }
        // Statements are written once in the code, so the cache stays small; should
        // generated SQL ever fill it, start again rather than grow without end.
        if statements.count >= 1000 {
            for kept in statements.values { sqlite3_finalize(kept.statement) }
            statements = [:]
        }
        statements[sql] = Prepared(statement: prepared)
        return Prepared(statement: prepared)
    }

    /// Runs one statement (prepared on first use, kept) and returns its rows.
    func run(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
        guard let handle else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the database is closed") }
        var prepared = try statements[sql] ?? prepare(sql, handle: handle)
        let statement = prepared.statement
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .int(let value): status = sqlite3_bind_int64(statement, index, value)
            case .text(let value): status = sqlite3_bind_text(statement, index, value, -1, rampart_sqlite_transient())
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), rampart_sqlite_transient()) }
            }
            guard status == SQLITE_OK else { throw failure(status, sql) }
        }
        var rows: [SQLRow] = []
        var names: [String] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw failure(status, sql) }
            if rows.isEmpty {
                let reprepares = sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0)
                if prepared.reprepares != reprepares {
                    prepared.columns = (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) }
                    prepared.reprepares = reprepares
                    statements[sql] = prepared
                }
                names = prepared.columns
            }
            var values: [String: SQLValue] = Dictionary(minimumCapacity: names.count)
            for (column, name) in zip(Int32(0)..., names) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values[name] = .int(sqlite3_column_int64(statement, column))
                case SQLITE_FLOAT: values[name] = .int(Int64(sqlite3_column_double(statement, column)))
                case SQLITE_TEXT: values[name] = .text(String(cString: sqlite3_column_text(statement, column)))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let bytes = sqlite3_column_blob(statement, column).map { [UInt8](UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
                    values[name] = .blob(bytes)
                default: values[name] = .null
                }
            }
            rows.append(SQLRow(values: values))
        }
        return rows
    }
}
