public import Crypto
public import RampartModel
import RampartPKI

/// How a device's identity is named: see ``RampartModel/DeviceID/init(publicKey:)``.
public enum DeviceIdentity {
    /// The device ID for a P-256 DeviceID public key.
    public static func deviceID(for publicKey: P256.Signing.PublicKey) -> DeviceID {
        DeviceID(publicKey: publicKey)
    }
}
