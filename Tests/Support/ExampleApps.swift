public import Foundation
import RampartDevice

/// The C example apps (Examples/), built once per test run with Examples/build.sh — Debian's
/// clang and wasi-libc, as an app developer would build them.
public enum ExampleApps {
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private static let built = Task { () throws -> URL in
        let out = URL(fileURLWithPath: try temporaryDirectory(prefix: "rampart-examples"))
        let script = repository.appendingPathComponent("Examples/build.sh").path
        let (status, output) = try await Command.run("/bin/bash", [script, out.path])
        guard status == 0 else { throw HarnessError("Examples/build.sh failed (\(status)); run scripts/install-deps.sh:\n\(output)") }
        return out
    }

    /// `<dir>/<app>/app.wasm` and `<dir>/<app>/app_manifest.json`.
    public static func directory() async throws -> URL { try await built.value }

    public static func wasm(_ app: String) async throws -> Data {
        try Data(contentsOf: try await directory().appendingPathComponent("\(app)/app.wasm"))
    }

    public static func manifest(_ app: String) async throws -> Data {
        try Data(contentsOf: try await directory().appendingPathComponent("\(app)/app_manifest.json"))
    }
}
