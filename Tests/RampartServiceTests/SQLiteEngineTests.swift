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
    /// meanwhile: a copy of the files taken while the service still has them open (what a
    /// crash of the service leaves) holds every committed transaction — small ones, ones
    /// larger than the gathering's buffer, ones after checkpoints restarted the log — and
    /// none that rolled back, and passes SQLite's integrity check.
    @Test func everyCommitIsInTheFileWhenItReturns() async throws {
        struct RolledBack: Error {}
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try await SQLiteDatabase.open(path: "\(directory)/rampart.sqlite", logger: Logger(label: "test"))
        try await database.transaction { db in
            try await db.query("CREATE TABLE chunks (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)")
            return ()
        }
        #expect(try await database.walWritesAreGathered)
        var committed: [Int64: [UInt8]] = [:]
        for round in Int64(0)..<400 {
            let size = round % 97 == 5 ? 700_000 : Int.random(in: 1...3000)
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let insert = { @Sendable (db: any SQLExecutor) in
                _ = try await db.query("INSERT INTO chunks (id, bytes) VALUES ($1, $2)", .int(round), .blob(bytes))
            }
            if round % 10 == 3 {
                await #expect(throws: RolledBack.self) {
                    try await database.transaction { db in
                        try await insert(db)
                        throw RolledBack()
                    }
                }
            } else {
                try await database.transaction { db in try await insert(db) }
                committed[round] = bytes
            }
            if round == 200 {
                try await database.read { db in _ = try await db.query("PRAGMA wal_checkpoint(TRUNCATE)") }
            }
        }
        let copy = "\(directory)/copy"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
        for file in ["rampart.sqlite", "rampart.sqlite-wal"] {
            try FileManager.default.copyItem(atPath: "\(directory)/\(file)", toPath: "\(copy)/\(file)")
        }
        let copied = try await SQLiteDatabase.open(path: "\(copy)/rampart.sqlite", logger: Logger(label: "test"))
        let check = try await copied.read { db in try await db.query("PRAGMA integrity_check")[0].text("integrity_check") }
        #expect(check == "ok")
        let rows = try await copied.read { db in
            try await db.query("SELECT id, bytes FROM chunks").map { (try $0.int("id"), try $0.blob("bytes") ?? []) }
        }
        let recovered = Dictionary(uniqueKeysWithValues: rows)
        #expect(recovered.keys.sorted() == committed.keys.sorted())
        let differing = committed.keys.filter { recovered[$0] != committed[$0] }.sorted()
        #expect(differing.isEmpty)
        try await copied.close()
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
