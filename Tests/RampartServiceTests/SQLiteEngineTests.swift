import Foundation
import Logging
import RampartModel
@testable import RampartService
import RampartTestSupport
import Testing

/// What the embedded engine promises beyond SQL: one service per file, and attestation
/// nonces in memory only.
@Suite struct SQLiteEngineTests {
    @Test func noncesLiveInMemoryAndTheFileHasOneService() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/rampart.sqlite"
        let database = try await SQLiteDatabase.open(path: path, logger: Logger(label: "test"))
        _ = try await Schema.migrate(database)

        // The in-memory table has the file's columns, so every statement fits both.
        func columns(_ schema: String) async throws -> [String] {
            try await database.read { db in
                try await db.query("PRAGMA \(schema).table_info(attestation_nonces)", []).map {
                    "\(try $0.text("name")) \(try $0.text("type")) \(try $0.int("notnull")) \(try $0.int("pk"))"
                }
            }
        }
        #expect(try await columns("main") == columns("temp"))
        #expect(try await columns("temp").count == 4)

        let device = DeviceID(String(repeating: "ab", count: 32))!
        try await database.transaction { db in
            try await db.insertNonce(hash: "n1", device: device, expiresAt: Date().addingTimeInterval(60), now: Date())
        }
        func count(_ schema: String) async throws -> Int64 {
            try await database.read { db in try await db.query("SELECT count(*) AS n FROM \(schema).attestation_nonces", [])[0].int("n") }
        }
        #expect(try await count("temp") == 1)
        #expect(try await count("main") == 0)

        // A second service on the same file is refused, saying why.
        await #expect {
            _ = try await SQLiteDatabase.open(path: path, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("held by another process")
        }
        try await database.close()

        // Reopened, the file knows nothing of the nonce: a restart forgets challenges.
        let reopened = try await SQLiteDatabase.open(path: path, logger: Logger(label: "test"))
        _ = try await Schema.migrate(reopened)
        let after = try await reopened.read { db in
            try await db.nonceRefusal(hash: "n1", device: device, now: Date())
        }
        #expect(after?.code == "nonce_unknown")
        try await reopened.close()
    }
}
