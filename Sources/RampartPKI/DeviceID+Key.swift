public import Crypto
public import Foundation
public import RampartModel

extension DeviceID {
    /// The device ID of a key: lowercase hex SHA-256 over its DER SubjectPublicKeyInfo, so
    /// anyone holding the key can recompute it and nobody can choose it.
    public init(subjectPublicKeyInfo der: some DataProtocol) {
        self.init(SHA256.hash(data: der).hexString)!
    }

    /// The device ID of a P-256 DeviceID public key.
    public init(publicKey: P256.Signing.PublicKey) {
        self.init(subjectPublicKeyInfo: publicKey.derRepresentation)
    }
}
