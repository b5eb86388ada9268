import Crypto
import Foundation
import RampartModel
public import RampartPKI

/// Where the service's private keys — CA keys and signing keys — are kept.
public enum KeyCustody: Sendable {
    /// One PEM file per key, mode 0600, in this directory (the SQLite default).
    case files(directory: String)
    /// Sealed with AES-256-GCM in the database, so several nodes share them (PostgreSQL).
    case sealed(KeySealer)

    /// Keeps the key of the row `id`: writes its file and returns NULL, or returns the
    /// sealed bytes for the row's `sealed_key` column. The sealing is bound to `id`, so a
    /// sealed key copied onto another row does not open.
    func keep(_ keyPEM: String, id: String) throws -> SQLValue {
        switch self {
        case .files(let directory):
            try SecretFile.write(keyPEM, to: path(id, in: directory))
            return .null
        case .sealed(let sealer):
            return .blob(Array(try sealer.seal(Data(keyPEM.utf8), context: id)))
        }
    }

    /// The key of `row` (whose `id` and `sealed_key` columns it reads).
    func keyPEM(of row: SQLRow) throws -> String {
        let id = try row.text("id")
        switch self {
        case .files(let directory):
            let path = path(id, in: directory)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw PKIError.keyMissing(path) }
            return text
        case .sealed(let sealer):
            guard let blob = try row.blob("sealed_key") else {
                throw PKIError.sealedKeyInvalid("key \(id) has no sealed key in the database")
            }
            return String(decoding: try sealer.open(Data(blob), context: id), as: UTF8.self)
        }
    }

    /// The key attestation nonces are MAC'd with (``AttestationNonces``): derived from the
    /// key-encryption key when sealed, so every node has it; for files (SQLite, one
    /// process) a new random key at every start, never written down.
    func attestationNonceKey() -> SymmetricKey {
        switch self {
        case .files: SymmetricKey(size: .bits256)
        case .sealed(let sealer): sealer.derivedKey(purpose: "rampart attestation nonce v1")
        }
    }

    /// Removes a key file written for a row that was not stored after all.
    func discard(id: String) {
        if case .files(let directory) = self { try? FileManager.default.removeItem(atPath: path(id, in: directory)) }
    }

    private func path(_ id: String, in directory: String) -> String { "\(directory)/\(id).key.pem" }
}
