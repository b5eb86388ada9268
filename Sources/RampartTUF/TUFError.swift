public import RampartModel

/// Why update metadata or a target was refused. The code names the attack or fault:
/// `tuf_signature_invalid`, `tuf_metadata_expired` (a frozen repository),
/// `tuf_version_rollback`, `tuf_version_mismatch`, `tuf_snapshot_mismatch` (mix-and-match),
/// `tuf_metadata_invalid`, `tuf_metadata_too_large`, `target_too_large`,
/// `target_hash_mismatch`, `target_unknown`.
public struct TUFError: RampartError, Equatable {
    public let code: String
    public let message: String
    public var statusCode: Int { 400 }

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func == (lhs: TUFError, rhs: TUFError) -> Bool { lhs.code == rhs.code }
}
