public import Crypto
public import Foundation
public import RampartModel
import RampartPKI
public import X509

/// Builds attestation evidence from a DICE identity: the payload (nonce, measurements,
/// version, counters), its signature by the Alias key, and the certificate chain
/// Alias → DeviceID that lets the service check both the key and the measured software.
public enum AttestationClient {
    public static func evidence(
        dice: SoftwareDICE, deviceIDCertificate: Certificate, runtimeMeasurement: SHA256Digest, softwareVersion: String,
        securityVersion: Int, nonce: String, otherMeasurements: [MeasuredComponent] = [], counters: [String: UInt64] = [:],
        now: Date
    ) throws -> AttestationEvidence {
        let alias = try dice.aliasCertificate(
            measurement: runtimeMeasurement, version: softwareVersion, securityVersion: securityVersion, now: now)
        let runtime = MeasuredComponent(name: "rampartd", sha256: runtimeMeasurement.hexString)
        let payload = AttestationPayload(
            deviceId: dice.deviceID, nonce: nonce, softwareVersion: softwareVersion,
            measurements: [runtime] + otherMeasurements, counters: counters)
        let bytes = try JSONEncoder.rampart.encode(payload)
        let signature = try dice.aliasKey(measurement: runtimeMeasurement).signature(for: bytes)
        return AttestationEvidence(
            payload: bytes.base64EncodedString(), signature: signature.derRepresentation.base64EncodedString(),
            certificateChain: [alias.pemString, deviceIDCertificate.pemString])
    }
}
