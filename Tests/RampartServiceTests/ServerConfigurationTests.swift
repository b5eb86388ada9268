import Foundation
import Logging
@testable import RampartService
import Testing

@Suite struct ServerConfigurationTests {
    @Test func flagsWinOverEnvironmentWhichWinsOverTheFile() throws {
        let directory = try ServiceHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try String(repeating: "ab", count: 32).write(toFile: "\(directory)/kek", atomically: true, encoding: .utf8)
        try """
            {"dataDirectory": "/from/file", "host": "0.0.0.0", "port": 9000, "database": "postgres://file/db",
             "keyEncryptionKeyFile": "\(directory)/kek", "hostnames": ["a.example"], "logLevel": "debug"}
            """.write(toFile: "\(directory)/rampart.json", atomically: true, encoding: .utf8)
        let configuration = try ServerConfiguration(
            layers: [
                ServerSettings(port: 7000),
                try ServerSettings(environment: ["RAMPART_HOST": "127.0.0.2", "RAMPART_PORT": "8000"]),
                try ServerSettings(file: "\(directory)/rampart.json"),
            ])
        #expect(configuration.port == 7000)
        #expect(configuration.host == "127.0.0.2")
        #expect(configuration.dataDirectory == "/from/file")
        #expect(configuration.databaseURL == "postgres://file/db")
        #expect(configuration.keyEncryptionKey == String(repeating: "ab", count: 32))
        #expect(configuration.hostnames == ["a.example"])
        #expect(configuration.logLevel == .debug)
        // The printed configuration redacts secrets.
        let secret = try ServerConfiguration(layers: [ServerSettings(database: "postgres://u:hunter2@db/x")])
        #expect(!secret.description.contains("hunter2"))
    }

    @Test func defaultsNeedNothing() throws {
        let configuration = try ServerConfiguration(layers: [])
        #expect(configuration.dataDirectory == "./rampart-data")
        #expect(configuration.port == 8443)
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.databaseURL == nil)
    }

    @Test func badSettingsAreRefusedWithTheirName() throws {
        let directory = try ServiceHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try #"{"prot": 8443}"#.write(toFile: "\(directory)/typo.json", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { _ = try ServerSettings(file: "\(directory)/typo.json") }
        #expect(throws: ConfigurationError.self) { _ = try ServerSettings(file: "\(directory)/missing.json") }
        #expect(throws: ConfigurationError.self) { _ = try ServerSettings(environment: ["RAMPART_PORT": "eighty"]) }
        #expect(throws: ConfigurationError.self) { _ = try ServerConfiguration(layers: [ServerSettings(port: 70000)]) }
        #expect(throws: ConfigurationError.self) { _ = try ServerConfiguration(layers: [ServerSettings(logLevel: "loud")]) }
        #expect(throws: ConfigurationError.self) { _ = try ServerConfiguration(layers: [ServerSettings(errorRetentionDays: 0)]) }
        #expect(throws: ConfigurationError.self) { _ = try ServerSettings(environment: ["RAMPART_ERROR_RETENTION_DAYS": "two weeks"]) }
        #expect(try ServerConfiguration(layers: [ServerSettings(errorRetentionDays: 30)]).errorRetentionDays == 30)
        #expect(try ServerConfiguration(layers: []).errorRetentionDays == 14)
        #expect(throws: ConfigurationError.self) {
            _ = try ServerConfiguration(layers: [ServerSettings(keyEncryptionKeyFile: "\(directory)/none")])
        }
    }
}
