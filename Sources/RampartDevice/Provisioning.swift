import Crypto
public import Foundation
public import RampartModel
public import RampartPKI
import SwiftASN1
public import X509

/// What a factory station does once per device: read the identity key from the security
/// processor and have the manufacturer CA certify it, giving the provisioning record the
/// service checks at claim time.
///
/// For a TPM the station also reads the TPM maker's endorsement-key certificate into the
/// record. The station vouches that the attestation key it certifies lives in that TPM
/// (it created it there); the service does not repeat that proof with a credential
/// activation — see docs/architecture notes in README.
public enum Provisioning {
    public static func record(
        for processor: any SecurityProcessor, manufacturer: CertificateAuthority, now: Date
    ) async throws -> ProvisioningRecord {
        let key = try P256.Signing.PublicKey(derRepresentation: try await processor.identityPublicKey())
        let deviceID = DeviceID(publicKey: key)
        let certificate: Certificate
        var endorsement: String?
        switch processor {
        case let dice as DICESecurityProcessor:
            certificate = try dice.identityCertificate(endorsedBy: manufacturer, now: now)
        default:
            guard let ek = try await processor.endorsementKeyCertificate() else {
                throw DeviceError(
                    code: "no_endorsement_certificate",
                    message: "the TPM holds no endorsement-key certificate, so nobody can tell it is genuine")
            }
            endorsement = ek.pemString
            let subject = try DistinguishedName {
                OrganizationName("Rampart device")
                CommonName(deviceID.hex)
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
            }
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key),
                notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew),
                notValidAfter: manufacturer.certificate.notValidAfter, issuer: manufacturer.certificate.subject,
                subject: subject, extensions: extensions, issuerPrivateKey: manufacturer.privateKey)
        }
        return ProvisioningRecord(
            deviceId: deviceID, securityProcessor: processor.kind, identityCertificate: certificate.pemString,
            endorsementKeyCertificate: endorsement)
    }
}
