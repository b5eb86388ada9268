import Crypto
import Foundation
import RampartModel
import RampartPKI
import SwiftASN1
import X509

/// Checks attestation evidence against the identity a device was claimed with, one rule at
/// a time, each refusal with its own code:
///
/// 1. the evidence is bound to the registered identity key (`device_not_genuine`,
///    `evidence_signature_invalid`) — DICE: the Alias certificate is signed by the DeviceID
///    key and the Alias key signed the payload; TPM: the attestation key signed a quote whose
///    qualifying data is the payload's hash;
/// 2. the measurement log is what the security processor recorded at launch
///    (`measurement_mismatch`) — DICE: the runtime digest the DeviceID key certified in the
///    Alias certificate's DiceTcbInfo; TPM: the log replays to the quoted PCR digest.
///
/// Nonce freshness, the claim and the reference values are checked against storage by
/// the caller. Certificates already parsed and verified are taken from `cache`.
struct AttestationVerifier: Sendable {
    /// The identity certificate registered when the device was claimed, in PEM.
    let identityPEM: String
    let processor: SecurityProcessorKind
    let cache: AttestationCache

    struct Verified: Sendable {
        let payload: AttestationPayload
        /// The key to certify for mutual TLS.
        let clientKey: ClientPublicKey
        /// The runtime's measurement, the first entry of the log.
        let runtime: [UInt8]
        /// SHA-256 over the concatenated measurement digests, hex.
        let measurementDigest: String
    }

    /// - Parameters: `payloadBytes` and `payload`: the evidence's payload, decoded once by the caller.
    func verify(_ evidence: AttestationEvidence, payloadBytes: Data, payload: AttestationPayload, now: Date) throws -> Verified {
        guard let signatureBytes = Data(base64Encoded: evidence.signature),
            let signature = try? ECDSASignatureDER.raw(der: signatureBytes).map(P256.Signing.ECDSASignature.init(rawRepresentation:))
                ?? P256.Signing.ECDSASignature(derRepresentation: signatureBytes)
        else { throw AttestationError.malformed("signature is not a base64 DER ECDSA signature") }
        let digests = try payload.measurements.map { component -> [UInt8] in
            guard component.sha256.utf8.count == 64, let bytes = [UInt8](hexString: component.sha256) else {
                throw AttestationError.malformed("measurement '\(component.name)' is not a SHA-256 digest in hex")
            }
            return bytes
        }
        guard let runtime = digests.first else { throw AttestationError.malformed("the measurement log is empty") }
        guard let keyBytes = Data(base64Encoded: payload.clientKey),
            let clientKey = try? ClientPublicKey(derRepresentation: keyBytes)
        else {
            throw AttestationError.malformed("clientKey is not a base64 DER P-256 SubjectPublicKeyInfo with an uncompressed point")
        }
        let identityDigest = AttestationCache.key(identityPEM)
        let identity = try registeredIdentity(identityDigest, device: payload.deviceId)
        // The identity's shape must fit the path (checked at claim too): only a DICE DeviceID
        // certificate may certify keys, so a TPM's restricted key cannot pose as one.
        guard identity.certifiesKeys == (processor == .softwareDICE) else {
            throw AttestationError.refused("device_not_genuine", "the registered identity does not fit a \(processor.rawValue) device")
        }

        switch processor {
        case .softwareDICE:
            try verifyDICE(
                evidence, payloadBytes: payloadBytes, payload: payload, signature: signature, runtime: runtime,
                identityDigest: identityDigest)
        case .tpm2:
            try verifyTPM(
                evidence, payloadBytes: payloadBytes, signature: signature, identityKey: P256.Signing.PublicKey(identity.key)!,
                digests: digests)
        }
        return Verified(
            payload: payload, clientKey: clientKey, runtime: runtime,
            measurementDigest: SHA256.hash(data: Array(digests.joined())).hexString)
    }

    /// The registered identity's key and shape, parsed once per distinct certificate.
    private func registeredIdentity(_ digest: AttestationCache.Key, device: DeviceID) throws -> AttestationCache.Identity {
        if let known = cache.identities.value(for: digest) { return known }
        guard let certificate = try? Certificate(pemEncoded: identityPEM) else {
            throw ServiceError(500, "identity_unreadable", "the identity registered for \(device) cannot be read")
        }
        guard P256.Signing.PublicKey(certificate.publicKey) != nil else {
            throw AttestationError.refused("device_not_genuine", "the registered identity key is not an ECDSA P-256 key")
        }
        let identity = AttestationCache.Identity(key: certificate.publicKey, certifiesKeys: certificate.certifiesKeys)
        cache.identities.insert(identity, for: digest)
        return identity
    }

    /// The most text an Alias certificate may take (Rampart's are under 1 KiB): what the
    /// cache holds per entry stays small whatever a device sends.
    static let aliasPEMLimit = 4096

    /// The Alias certificate's key and what its DiceTcbInfo certifies, once it is known to be
    /// signed by the registered DeviceID key: from the cache when these bytes were checked
    /// against this identity before (`cacheKey` nil), else checked now (`cacheKey` to store
    /// it under once the evidence's signature verifies too).
    private func checkedAlias(_ pem: String, identityDigest: AttestationCache.Key) throws -> (AttestationCache.Alias, cacheKey: AttestationCache.Key?) {
        let cacheKey = AttestationCache.key(alias: pem, identity: identityDigest)
        if let known = cache.aliases.value(for: cacheKey) { return (known, nil) }
        guard pem.utf8.count <= Self.aliasPEMLimit, let alias = try? Certificate(pemEncoded: pem) else {
            throw AttestationError.malformed("DICE evidence carries the Alias certificate and no quote")
        }
        guard let identity = try? Certificate(pemEncoded: identityPEM), alias.isIssued(by: identity) else {
            throw AttestationError.refused(
                "device_not_genuine", "the Alias certificate is not signed by this device's registered DeviceID key")
        }
        guard P256.Signing.PublicKey(alias.publicKey) != nil else {
            throw AttestationError.refused("evidence_signature_invalid", "the Alias key is not an ECDSA P-256 key")
        }
        let tcbInfo = alias.extensions.first(where: { $0.oid == DiceTcbInfo.oid }).flatMap { try? DiceTcbInfo($0) }
        return (AttestationCache.Alias(key: alias.publicKey, runtime: tcbInfo?.fwids.first, version: tcbInfo?.version), cacheKey)
    }

    private func verifyDICE(
        _ evidence: AttestationEvidence, payloadBytes: Data, payload: AttestationPayload,
        signature: P256.Signing.ECDSASignature, runtime: [UInt8], identityDigest: AttestationCache.Key
    ) throws {
        guard evidence.quote == nil, let first = evidence.certificateChain.first else {
            throw AttestationError.malformed("DICE evidence carries the Alias certificate and no quote")
        }
        let (alias, newCacheKey) = try checkedAlias(first, identityDigest: identityDigest)
        guard let aliasKey = P256.Signing.PublicKey(alias.key), aliasKey.isValidSignature(signature, for: payloadBytes) else {
            throw AttestationError.refused("evidence_signature_invalid", "the evidence is not signed by the Alias key")
        }
        guard let certifiedRuntime = alias.runtime, let certifiedVersion = alias.version else {
            throw AttestationError.malformed("the Alias certificate carries no DiceTcbInfo")
        }
        // Remembered only for an Alias certificate that has signed good evidence.
        if let newCacheKey { cache.aliases.insert(alias, for: newCacheKey) }
        guard certifiedRuntime == runtime, certifiedVersion == payload.softwareVersion else {
            throw AttestationError.refused(
                "measurement_mismatch",
                "the measurement log or software version differs from what the DeviceID key certified at boot")
        }
    }

    private func verifyTPM(
        _ evidence: AttestationEvidence, payloadBytes: Data, signature: P256.Signing.ECDSASignature,
        identityKey: P256.Signing.PublicKey, digests: [[UInt8]]
    ) throws {
        guard let quoteText = evidence.quote, let quoteBytes = Data(base64Encoded: quoteText) else {
            throw AttestationError.malformed("TPM evidence must carry a base64 quote")
        }
        guard identityKey.isValidSignature(signature, for: quoteBytes) else {
            throw AttestationError.refused(
                "evidence_signature_invalid", "the quote is not signed by this device's registered attestation key")
        }
        guard let attest = try? TPMSAttest(Array(quoteBytes)), attest.isQuote else {
            throw AttestationError.malformed("the quote is not a TPMS_ATTEST of a TPM2_Quote")
        }
        guard attest.extraData == Array(SHA256.hash(data: payloadBytes)) else {
            throw AttestationError.refused(
                "evidence_signature_invalid", "the quote's qualifying data is not the hash of this payload")
        }
        guard attest.pcrSelections.count == 1, attest.pcrSelections[0].hashAlgorithm == TPMSAttest.sha256,
            attest.pcrSelections[0].pcrs == [MeasuredLaunch.pcr]
        else { throw AttestationError.malformed("the quote must cover exactly SHA-256 PCR \(MeasuredLaunch.pcr)") }
        let replayed = digests.reduce([UInt8](repeating: 0, count: 32)) { pcr, digest in
            Array(SHA256.hash(data: pcr + digest))
        }
        guard attest.pcrDigest == Array(SHA256.hash(data: replayed)) else {
            throw AttestationError.refused(
                "measurement_mismatch", "the measurement log does not replay to the PCR value the TPM quoted")
        }
    }
}

/// Attestation refusals: 403 with a code saying which rule failed. Evidence that matches
/// the request schema but whose contents cannot be read proves nothing, so it is refused
/// the same way (`evidence_malformed`).
enum AttestationError {
    static func malformed(_ why: String) -> ServiceError { ServiceError(403, "evidence_malformed", why) }
    static func refused(_ code: String, _ message: String) -> ServiceError { ServiceError(403, code, message) }
}
