public import Crypto
public import RampartModel

/// How a device's identity is named.
///
/// The device ID is the lowercase hex of SHA-256 over the DER SubjectPublicKeyInfo of the
/// DeviceID public key, so anyone holding the key can recompute it and nobody can choose it.
/// The security monitor, attestation client and provisioning (later work) build on this.
public enum DeviceIdentity {
    /// The device ID for a P-256 DeviceID public key.
    public static func deviceID(for publicKey: P256.Signing.PublicKey) -> DeviceID {
        let digest = SHA256.hash(data: publicKey.derRepresentation)
        return DeviceID(digest.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined())!
    }
}
