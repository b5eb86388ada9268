import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Files that hold secrets (CA keys, tokens, the CLI's credentials).
public enum SecretFile {
    /// Writes `contents` to `path` readable and writable by the owner only (0600). The
    /// file is created with that mode, so the secret is never briefly world-readable.
    /// A symbolic link at `path` is refused rather than followed.
    public static func write(_ contents: String, to path: String) throws {
        try write(contents, to: path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)
    }

    /// Like ``write(_:to:)``, but only when nothing exists at `path` yet, checked by the
    /// same system call that creates the file.
    public static func create(_ contents: String, at path: String) throws {
        try write(contents, to: path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
    }

    private static func write(_ contents: String, to path: String, flags: Int32) throws {
        let fd = open(path, flags, 0o600)
        guard fd >= 0 else { throw SecretFileError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw SecretFileError(path: path, reason: String(cString: strerror(errno))) }
            written += n
        }
    }
}

/// A secret file could not be written.
public struct SecretFileError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "cannot write \(path): \(reason)" }
}
