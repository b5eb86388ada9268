import Crypto
import Foundation
import RampartModel
import RampartPKI
import SwiftASN1
import X509

/// Decides, at claim time, whether a provisioning record belongs to a genuine device.
///
/// - The identity certificate must be signed by a **device manufacturer CA** and certify
///   the key whose hash is the device ID. Its shape must match the processor the record
///   names, so a record cannot switch a device to the other verification path: a DICE
///   DeviceID certificate is a CA certificate (it certifies Alias keys), a TPM attestation
///   key's certificate is not.
/// - A TPM device's record must also carry an **endorsement-key certificate** signed by a
///   **TPM vendor CA** and marked as one (a TCG subject-alternative name naming the TPM
///   maker, not a CA). The two sets of anchors are separate, so a TPM maker's CA can never
///   vouch for a device identity, nor a device maker's for a TPM.
///
/// Every configured certificate is a trust anchor of its own: an operator who trusts a
/// maker's issuing CA names that CA (for swtpm, `issuercert.pem`).
struct Genuineness: Sendable {
    let manufacturers: [Certificate]
    let tpmVendors: [Certificate]

    /// `tcg-at-tpmManufacturer` (2.23.133.2.1), which TCG EK certificates carry in their
    /// subject alternative name.
    static let tpmManufacturerOID: [UInt8] = [0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x01]

    /// The identity certificate, once the record is shown genuine.
    func verify(_ record: ProvisioningRecord, now: Date) throws -> Certificate {
        guard let identity = try? Certificate(pemEncoded: record.identityCertificate) else {
            throw Self.notGenuine("the identity certificate is not a PEM certificate")
        }
        try requireSigned(identity, by: manufacturers, what: "identity certificate", anchors: "manufacturer", now: now)
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
        case .softwareDICE:
            guard identity.isCertificateAuthority, identity.certifiesKeys else {
                throw Self.notGenuine("a software-DICE identity certificate certifies Alias keys; this one cannot, so it is not one")
            }
            guard record.endorsementKeyCertificate == nil else {
                throw Self.notGenuine("a software-DICE device has no endorsement-key certificate")
            }
        case .tpm2:
            guard !identity.isCertificateAuthority, !identity.certifiesKeys else {
                throw Self.notGenuine("a TPM attestation key's certificate does not certify keys; this one does, so it is not one")
            }
            guard let pem = record.endorsementKeyCertificate else {
                throw Self.notGenuine("a TPM device's record must carry the TPM's endorsement-key certificate")
            }
            guard let endorsement = try? Certificate(pemEncoded: pem) else {
                throw Self.notGenuine("the endorsement-key certificate is not a PEM certificate")
            }
            try requireSigned(endorsement, by: tpmVendors, what: "endorsement-key certificate", anchors: "TPM vendor", now: now)
            let names = endorsement.extensions.first { $0.oid == .X509ExtensionID.subjectAlternativeName }
            guard !endorsement.isCertificateAuthority, let names, names.value.firstRange(of: Self.tpmManufacturerOID) != nil
            else {
                throw Self.notGenuine("the endorsement-key certificate does not name a TPM manufacturer, so it is no EK certificate")
            }
        }
        return identity
    }

    private func requireSigned(
        _ certificate: Certificate, by anchors: [Certificate], what: String, anchors kind: String, now: Date
    ) throws {
        guard
            anchors.contains(where: { anchor in
                anchor.notValidBefore <= now && now <= anchor.notValidAfter && certificate.isIssued(by: anchor)
            })
        else {
            throw Self.notGenuine("the \(what) is not signed by a \(kind) CA this service trusts (issuer \(certificate.issuer))")
        }
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            throw Self.notGenuine("the \(what) is outside its validity period")
        }
    }

    /// 403, like the same refusal at attestation: the service will not give anyone a device it cannot tell is genuine.
    static func notGenuine(_ why: String) -> ServiceError { ServiceError(403, "device_not_genuine", why) }
}
