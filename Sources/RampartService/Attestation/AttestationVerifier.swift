import Crypto
import Foundation
import RampartModel
import RampartPKI
import SwiftASN1
import X509

/// Checks DICE attestation evidence, one rule at a time, each refusal with its own code:
///
/// 1. the chain is Alias → DeviceID → a trusted manufacturer CA (`device_not_genuine`);
/// 2. the DeviceID certificate's key hashes to the claimed device ID (`device_id_mismatch`);
/// 3. the payload is signed by the Alias key (`evidence_signature_invalid`);
/// 4. the runtime measurement in the payload is the one the DeviceID key certified in the
///    Alias certificate's DiceTcbInfo (`measurement_mismatch`).
///
/// Nonce freshness and the device's tenant are checked against storage by the caller.
struct AttestationVerifier: Sendable {
    let manufacturers: [Certificate]

    struct Verified: Sendable {
        let payload: AttestationPayload
        let aliasKey: Certificate.PublicKey
        let tcbInfo: DiceTcbInfo
        /// SHA-256 over the concatenated measurement digests, hex.
        let measurementDigest: String
    }

    func verify(_ evidence: AttestationEvidence, now: Date) throws -> Verified {
        guard let payloadBytes = Data(base64Encoded: evidence.payload),
            let payload = try? JSONDecoder.rampart.decode(AttestationPayload.self, from: payloadBytes)
        else { throw AttestationError.malformed("payload is not base64 of an AttestationPayload") }
        guard let signatureBytes = Data(base64Encoded: evidence.signature),
            let signature = try? P256.Signing.ECDSASignature(derRepresentation: signatureBytes)
        else { throw AttestationError.malformed("signature is not a base64 DER ECDSA signature") }
        guard evidence.certificateChain.count == 2,
            let alias = try? Certificate(pemEncoded: evidence.certificateChain[0]),
            let deviceCertificate = try? Certificate(pemEncoded: evidence.certificateChain[1])
        else { throw AttestationError.malformed("certificateChain must be [Alias PEM, DeviceID PEM]") }

        // 1. Genuine: endorsed by a manufacturer we trust, and Alias certified by DeviceID.
        guard
            manufacturers.contains(where: { manufacturer in
                manufacturer.subject == deviceCertificate.issuer
                    && manufacturer.publicKey.isValidSignature(deviceCertificate.signature, for: deviceCertificate)
            })
        else {
            throw AttestationError.refused(
                "device_not_genuine", "the DeviceID certificate is not endorsed by a manufacturer CA this service trusts")
        }
        guard deviceCertificate.notValidBefore <= now, now <= deviceCertificate.notValidAfter else {
            throw AttestationError.refused(
                "device_not_genuine", "the DeviceID certificate is outside its validity period")
        }
        guard alias.issuer == deviceCertificate.subject,
            deviceCertificate.publicKey.isValidSignature(alias.signature, for: alias)
        else { throw AttestationError.refused(
                "device_not_genuine", "the Alias certificate is not signed by the DeviceID key") }

        // 2. The identity is the key.
        guard let deviceKey = P256.Signing.PublicKey(deviceCertificate.publicKey) else {
            throw AttestationError.refused("device_not_genuine", "the DeviceID key is not an ECDSA P-256 key")
        }
        let derived = DeviceID(publicKey: deviceKey)
        guard derived == payload.deviceId else {
            throw AttestationError.refused(
                "device_id_mismatch", "device ID \(payload.deviceId) is not the hash of the DeviceID key (\(derived))")
        }

        // 3. Signed by the key bound to the measured software.
        guard let aliasKey = P256.Signing.PublicKey(alias.publicKey),
            aliasKey.isValidSignature(signature, for: payloadBytes)
        else { throw AttestationError.refused(
                "evidence_signature_invalid", "the evidence is not signed by the Alias key") }

        // 4. What was measured is what was certified.
        guard let ext = alias.extensions.first(where: { $0.oid == DiceTcbInfo.oid }),
            let tcbInfo = try? DiceTcbInfo(ext)
        else { throw AttestationError.malformed("the Alias certificate carries no DiceTcbInfo") }
        let runtime = payload.measurements.first.flatMap { digestBytes($0.sha256) }
        guard let runtime, tcbInfo.fwids.first == runtime, tcbInfo.version == payload.softwareVersion else {
            throw AttestationError.refused(
                "measurement_mismatch",
                "the measurement log or software version differs from what the DeviceID key certified at boot")
        }
        let all = payload.measurements.compactMap { digestBytes($0.sha256) }.joined()
        let digest = SHA256.hash(data: Array(all)).hexString
        return Verified(payload: payload, aliasKey: alias.publicKey, tcbInfo: tcbInfo, measurementDigest: digest)
    }
}

/// A SHA-256 digest written in hex, or nil.
private func digestBytes(_ text: String) -> [UInt8]? {
    text.utf8.count == 64 ? [UInt8](hexString: text) : nil
}

/// Attestation refusals: 403 with a code saying which rule failed. Evidence that matches
/// the request schema but whose contents cannot be read proves nothing, so it is refused
/// the same way (`evidence_malformed`).
enum AttestationError {
    static func malformed(_ why: String) -> ServiceError { ServiceError(403, "evidence_malformed", why) }
    static func refused(_ code: String, _ message: String) -> ServiceError { ServiceError(403, code, message) }
}
