import Foundation
import RampartModel

/// What `rampart login` remembers: the server, the token, the pinned root CA and the
/// selected tenant. Kept in `$RAMPART_CONFIG`, else `$XDG_CONFIG_HOME/rampart/config.json`,
/// else `~/.config/rampart/config.json`, with mode 0600 because it holds a token.
struct CLIConfiguration: Codable, Sendable {
    var server: String?
    var token: String?
    var rootCAPEM: String?
    var tenantId: TenantID?

    static func path(override: String?) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let override { return override }
        if let path = environment["RAMPART_CONFIG"] { return path }
        let base =
            environment["XDG_CONFIG_HOME"]
            ?? ((environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path) + "/.config")
        return base + "/rampart/config.json"
    }

    static func load(from path: String) throws -> CLIConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { return CLIConfiguration() }
        do {
            return try JSONDecoder.rampart.decode(CLIConfiguration.self, from: data)
        } catch {
            throw CLIError("\(path) is not a valid rampart configuration (\(error)); remove it and log in again")
        }
    }

    func save(to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder.rampart
        encoder.outputFormatting.insert(.prettyPrinted)
        try SecretFile.write(String(decoding: try encoder.encode(self), as: UTF8.self), to: path)
    }
}
