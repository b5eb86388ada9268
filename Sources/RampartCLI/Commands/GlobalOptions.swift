import ArgumentParser
import Foundation
import RampartModel

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    @Option(help: "Service URL (overrides the one saved by `rampart login`).")
    var server: String?

    @Option(help: "Tenant ID or name (overrides the selected tenant).")
    var tenant: String?

    @Option(name: .customLong("config"), help: "Configuration file (default: ~/.config/rampart/config.json or $RAMPART_CONFIG).")
    var configPath: String?

    var configurationPath: String { CLIConfiguration.path(override: configPath) }

    /// Runs `body` with a client logged in as the saved (or `$RAMPART_TOKEN`) token.
    func withClient<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
        let configuration = try CLIConfiguration.load(from: configurationPath)
        guard let server = server ?? configuration.server else {
            throw CLIError("not logged in: run `rampart login --server URL --token TOKEN --fingerprint SHA256` first")
        }
        let token = Self.environmentToken ?? configuration.token
        return try await APIClient.with(server: server, token: token, trustRootPEM: configuration.rootCAPEM, body)
    }

    /// `$RAMPART_TOKEN`, when set and not empty.
    static var environmentToken: String? {
        ProcessInfo.processInfo.environment["RAMPART_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The tenant to act in: `--tenant` (ID or name), else the one selected at login.
    func tenantID(_ client: APIClient) async throws -> TenantID {
        if let tenant {
            if let id = TenantID(tenant) { return id }
            guard let match = try await client.tenants().first(where: { $0.name == tenant }) else {
                throw CLIError("no tenant named '\(tenant)' is visible to this token")
            }
            return match.id
        }
        guard let id = try CLIConfiguration.load(from: configurationPath).tenantId else {
            throw CLIError("no tenant selected: pass --tenant or run `rampart tenant select TENANT`")
        }
        return id
    }

    /// Prints `value` as JSON with `--json`, otherwise the text `human` renders.
    func emit<T: Encodable>(_ value: T, human: (T) -> String) throws {
        if json {
            let encoder = JSONEncoder.rampart
            encoder.outputFormatting.insert(.prettyPrinted)
            print(String(decoding: try encoder.encode(value), as: UTF8.self))
        } else {
            let text = human(value)
            if !text.isEmpty { print(text) }
        }
    }

    /// For commands with nothing to return: `{"ok": true, …}` with `--json`, else `message`.
    func done(_ message: String, _ fields: [String: String] = [:]) throws {
        var object = fields
        object["result"] = "ok"
        try emit(object) { _ in message }
    }
}

/// Renders rows as aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    guard !rows.isEmpty else { return "(none)" }
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

func date(_ date: Date) -> String {
    date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon))
}

func details(_ pairs: [(String, String)]) -> String {
    let width = pairs.map(\.0.count).max() ?? 0
    return pairs.map { "\($0.0.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.1)" }.joined(separator: "\n")
}
