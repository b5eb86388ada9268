public import Crypto
public import Foundation
import RampartModel

/// Seals CA private keys with AES-256-GCM so they can live in a shared database.
///
/// Used when the service runs on PostgreSQL: several stateless nodes must sign with
/// the same CA keys, so the keys are stored in the database, encrypted with a key the
/// operator supplies (`RAMPART_KEY_ENCRYPTION_KEY` or `--key-encryption-key-file`: 32
/// bytes as 64 hexadecimal characters or base64). Without that key a database dump
/// reveals no CA key.
public struct KeySealer: Sendable {
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(key: SymmetricKey) { keyBytes = key.withUnsafeBytes { Array($0) } }

    /// Reads a 256-bit key written as 64 hex characters or as base64 (whitespace ignored).
    public init(encoded text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.count == 64, let bytes = [UInt8](hexString: trimmed) {
            keyBytes = bytes
        } else if let data = Data(base64Encoded: trimmed), data.count == 32 {
            keyBytes = Array(data)
        } else {
            throw PKIError(
                code: "key_encryption_key_invalid",
                message: "the key-encryption key must be 32 bytes, written as 64 hex characters or base64")
        }
    }

    /// Encrypts and authenticates `plaintext`, binding it to `context` (for example the CA's ID)
    /// so a sealed key cannot be swapped onto another row.
    public func seal(_ plaintext: Data, context: String) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8))
        return box.combined!
    }

    /// A key for another purpose, derived from this one with HKDF-SHA256: every node that
    /// holds the key-encryption key derives the same, and neither reveals the other.
    public func derivedKey(purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data(purpose.utf8), outputByteCount: 32)
    }

    public func open(_ sealed: Data, context: String) throws -> Data {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
        } catch {
            throw PKIError.sealedKeyInvalid("wrong key-encryption key, or the stored key was altered")
        }
    }
}
