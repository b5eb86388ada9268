import RampartCLI

/// A throwaway PostgreSQL cluster on loopback for a test (see `LocalPostgres`).
public enum PostgresTestServer {
    /// Runs `body` with the cluster's URL; the cluster is gone afterwards.
    public static func with<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        try await LocalPostgres.with(body)
    }
}
