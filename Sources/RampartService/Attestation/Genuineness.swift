import Crypto
import Foundation
import SwiftASN1
import RampartModel
import RampartPKI
import X509

/// Decides, at claim time, whether a provisioning record belongs to a genuine device: its
/// identity certificate is signed by a manufacturer CA this service trusts and certifies
/// the key whose hash is the device ID. A TPM device's record must also carry an
/// endorsement-key certificate from a trusted TPM maker.
///
/// Every configured manufacturer certificate is a trust anchor of its own: an operator
/// who trusts a maker's issuing CA names that CA (for swtpm, `issuercert.pem`).
struct Genuineness: Sendable {
    let manufacturers: [Certificate]

    /// The identity certificate, once the record is shown genuine.
    func verify(_ record: ProvisioningRecord, now: Date) throws -> Certificate {
        guard let identity = try? Certificate(pemEncoded: record.identityCertificate) else {
            throw Self.notGenuine("the identity certificate is not a PEM certificate")
        }
        try requireEndorsed(identity, what: "identity certificate", now: now)
        guard let key = P256.Signing.PublicKey(identity.publicKey) else {
            throw Self.notGenuine("the identity key is not an ECDSA P-256 key")
        }
        let derived = DeviceID(publicKey: key)
        guard derived == record.deviceId else {
            throw ServiceError(
                403, "device_id_mismatch",
                "device ID \(record.deviceId) is not the SHA-256 of the certified identity key (\(derived))")
        }
        switch record.securityProcessor {
        case .tpm2:
            guard let pem = record.endorsementKeyCertificate else {
                throw Self.notGenuine("a TPM device's record must carry the TPM's endorsement-key certificate")
            }
            guard let endorsement = try? Certificate(pemEncoded: pem) else {
                throw Self.notGenuine("the endorsement-key certificate is not a PEM certificate")
            }
            try requireEndorsed(endorsement, what: "endorsement-key certificate", now: now)
        case .softwareDICE:
            guard record.endorsementKeyCertificate == nil else {
                throw Self.notGenuine("a software-DICE device has no endorsement-key certificate")
            }
        }
        return identity
    }

    private func requireEndorsed(_ certificate: Certificate, what: String, now: Date) throws {
        guard
            manufacturers.contains(where: { manufacturer in
                manufacturer.subject == certificate.issuer
                    && manufacturer.publicKey.isValidSignature(certificate.signature, for: certificate)
            })
        else {
            throw Self.notGenuine(
                "the \(what) is not signed by a manufacturer CA this service trusts (issuer \(certificate.issuer))")
        }
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            throw Self.notGenuine("the \(what) is outside its validity period")
        }
    }

    /// 403, like the same refusal at attestation: the service will not give anyone a device it cannot tell is genuine.
    static func notGenuine(_ why: String) -> ServiceError { ServiceError(403, "device_not_genuine", why) }
}
