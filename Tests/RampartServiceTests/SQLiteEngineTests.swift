import Foundation
import Logging
import RampartModel
@testable import RampartService
import RampartTestSupport
import Testing

/// What the embedded engine promises beyond SQL: one service per file.
@Suite struct SQLiteEngineTests {
    @Test func theFileHasOneService() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/rampart.sqlite"
        let database = try await SQLiteDatabase.open(path: path, logger: Logger(label: "test"))
        _ = try await Schema.migrate(database)

        // A second service on the same file is refused, saying why.
        await #expect {
            _ = try await SQLiteDatabase.open(path: path, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("held by another process")
        }
        try await database.close()

        // Once the first has closed it, the file opens again.
        let reopened = try await SQLiteDatabase.open(path: path, logger: Logger(label: "test"))
        #expect(try await Schema.migrate(reopened).isEmpty)
        try await reopened.close()
    }

    /// A commit is in the file when it returns, whatever the write gathering holds back
    /// meanwhile. After each commit below, a copy of the files taken while the service still
    /// has them open (what a crash of the service leaves) holds every committed transaction
    /// and nothing else, and passes SQLite's integrity check: commits of 1 to 72 pages (some
    /// end exactly where the gathering's buffer fills), rolled-back ones, one larger than the
    /// page cache that changes rows it wrote before (SQLite then overwrites frames and
    /// rewrites their checksums), and commits after a checkpoint started the log again.
    @Test func everyCommitIsInTheFileWhenItReturns() async throws {
        struct RolledBack: Error {}
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try await SQLiteDatabase.open(path: "\(directory)/rampart.sqlite", logger: Logger(label: "test"))
        try await database.read { db in _ = try await db.query("PRAGMA cache_size=10") }
        try await database.transaction { db in
            try await db.query("CREATE TABLE chunks (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)")
            return ()
        }
        #expect(try await database.walWritesAreGathered)
        var committed: [Int64: [UInt8]] = [:]
        var checks = 0
        // Bytes that differ from row to row and commit to commit (a misplaced or stale page
        // shows), made cheaply: eight at a time from one random seed per call.
        @Sendable func random(_ count: Int) -> [UInt8] {
            var state = UInt64.random(in: 1...UInt64.max)
            return [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
                for index in 0..<count {
                    if index % 8 == 0 {
                        state ^= state << 13
                        state ^= state >> 7
                        state ^= state << 17
                    }
                    bytes[index] = UInt8(truncatingIfNeeded: state >> (8 * UInt64(index % 8)))
                }
                initialized = count
            }
        }
        func commit(_ rows: [Int64: [UInt8]]) async throws {
            try await database.transaction { db in
                for (id, bytes) in rows {
                    try await db.query("INSERT OR REPLACE INTO chunks (id, bytes) VALUES ($1, $2)", .int(id), .blob(bytes))
                }
            }
            committed.merge(rows) { $1 }
        }
        func copyHoldsWhatWasCommitted() async throws {
            checks += 1
            let copy = "\(directory)/copy-\(checks)"
            try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
            defer { try? FileManager.default.removeItem(atPath: copy) }
            for file in ["rampart.sqlite", "rampart.sqlite-wal"] {
                try FileManager.default.copyItem(atPath: "\(directory)/\(file)", toPath: "\(copy)/\(file)")
            }
            let copied = try await SQLiteDatabase.open(path: "\(copy)/rampart.sqlite", logger: Logger(label: "test"))
            let check = try await copied.read { db in try await db.query("PRAGMA integrity_check")[0].text("integrity_check") }
            let rows = try await copied.read { db in
                try await db.query("SELECT id, bytes FROM chunks").map { (try $0.int("id"), try $0.blob("bytes") ?? []) }
            }
            try await copied.close()
            let recovered = Dictionary(uniqueKeysWithValues: rows)
            #expect(check == "ok", "check \(checks)")
            #expect(recovered.keys.sorted() == committed.keys.sorted(), "check \(checks)")
            let differing = committed.keys.filter { recovered[$0] != committed[$0] }.sorted()
            #expect(differing.isEmpty, "check \(checks)")
        }

        var id: Int64 = 0
        // Finely around 64 KiB, where a commit's last page meets the end of the gathering's buffer.
        for size in Array(stride(from: 500, through: 55_000, by: 2_500)) + Array(stride(from: 56_000, through: 72_000, by: 200)) {
            id += 1
            try await commit([id: random(size)])
            try await copyHoldsWhatWasCommitted()
            if id % 16 == 0 {
                let rolledBack = -id
                await #expect(throws: RolledBack.self) {
                    try await database.transaction { db in
                        try await db.query("INSERT INTO chunks (id, bytes) VALUES ($1, $2)", .int(rolledBack), .blob(random(5_000)))
                        throw RolledBack()
                    }
                }
            }
        }
        try await copyHoldsWhatWasCommitted()
        // Larger than the page cache, and changing rows it wrote earlier in the same transaction.
        let large = Dictionary(uniqueKeysWithValues: (Int64(1_000)..<1_060).map { ($0, random(3_000)) })
        try await database.transaction { db in
            for row in Int64(1_000)..<1_060 {
                try await db.query("INSERT INTO chunks (id, bytes) VALUES ($1, $2)", .int(row), .blob(random(3_000)))
            }
            for (row, bytes) in large {
                try await db.query("UPDATE chunks SET bytes = $2 WHERE id = $1", .int(row), .blob(bytes))
            }
        }
        committed.merge(large) { $1 }
        try await copyHoldsWhatWasCommitted()
        try await database.read { db in _ = try await db.query("PRAGMA wal_checkpoint(TRUNCATE)") }
        for row in Int64(2_000)..<2_010 {
            try await commit([row: random(700)])
            try await copyHoldsWhatWasCommitted()
        }
        try await database.close()
    }

    /// Migration 13 rebuilds `attestations` without AUTOINCREMENT: what was recorded stays,
    /// with its ids, and later rows come after it.
    @Test func attestationsKeepTheirIdsAcrossTheRebuild() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try await SQLiteDatabase.open(path: "\(directory)/rampart.sqlite", logger: Logger(label: "test"))
        let before = Schema.migrations.filter { $0.version < 13 }
        try await database.transaction { db in
            try await db.query(
                "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            for migration in before {
                for statement in migration.sql(for: .sqlite) { try await db.query(statement, []) }
                try await db.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)", .int(migration.version),
                    .text(migration.name))
            }
        }
        let device = DeviceID(String(repeating: "ab", count: 32))!
        let tenant = TenantID(uuid: UUID())
        func record(_ serial: String) async throws {
            try await database.transaction { db in
                try await db.insertAttestation(
                    device: device, tenant: tenant, time: Date(), softwareVersion: "1.0.0", measurementDigest: "00",
                    certificateSerial: serial, certificateExpiresAt: Date())
            }
        }
        try await database.transaction { db in
            try await db.query("INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Contoso', 0)", .of(tenant))
        }
        for serial in ["a", "b", "c"] { try await record(serial) }
        #expect(try await Schema.migrate(database).map(\.version) == [13])
        try await record("d")
        let rows = try await database.read { db in
            try await db.query("SELECT id, certificate_serial FROM attestations ORDER BY id", []).map {
                "\(try $0.int("id")) \(try $0.text("certificate_serial"))"
            }
        }
        #expect(rows == ["1 a", "2 b", "3 c", "4 d"])
        let definition = try await database.read { db in
            try await db.query("SELECT sql FROM sqlite_master WHERE name = 'attestations'", [])[0].text("sql")
        }
        #expect(!definition.contains("AUTOINCREMENT"))
        try await database.close()
    }
}
