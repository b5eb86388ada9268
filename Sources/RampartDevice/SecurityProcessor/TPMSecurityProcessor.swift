public import Crypto
public import Foundation
import SwiftASN1
public import RampartModel
public import X509

/// The TPM 2.0 backend, through libtss2 (ESYS).
///
/// - Identity: a restricted ECC P-256 attestation key (AK), a primary key under the
///   endorsement hierarchy, so the TPM derives the same key at every start and never
///   exports it. The device ID is the SHA-256 of its SubjectPublicKeyInfo.
/// - Measured launch: PCR 23 (application support; a process may reset and extend it) is
///   reset and extended with each measurement. On a machine whose firmware measures the
///   boot (PCRs 0–7), those would join the quote; swtpm has no firmware.
/// - Evidence: `TPM2_Quote` of PCR 23 with SHA-256(payload) as qualifying data, signed by the AK.
/// - Counters: NV counter indices, which a TPM never lets go back, not even across a clear.
///   A counter defined later starts at the highest value any counter of this TPM has had, so
///   each counter's first value is kept beside it as its baseline, in a write-once index
///   (written and locked at once; the TPM refuses to change it), and the counter's value is
///   the distance from it: 1 after the first increment, whatever the TPM's history.
///
/// ESYS is not thread-safe, so the TPM is owned by this actor. Its calls block for the
/// duration of a TPM command (about a millisecond on swtpm, more on a discrete TPM).
public actor TPMSecurityProcessor: SecurityProcessor {
    public nonisolated let kind = SecurityProcessorKind.tpm2

    private let tpm: TPM2
    public nonisolated let tcti: String

    /// Opens the TPM behind `tcti`: `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`.
    public init(tcti: String) throws {
        self.tcti = tcti
        tpm = try TPM2(tcti: tcti)
    }

    public func identityPublicKey() -> [UInt8] { tpm.akPublicKeySPKI() }

    /// The EK certificate, preferring an ECC one. A TPM without one cannot be shown genuine.
    public func endorsementKeyCertificate() throws -> Certificate? {
        let certificates = try tpm.endorsementKeyCertificates().compactMap { try? Certificate(derEncoded: $0) }
        let ecc = certificates.first { P384.Signing.PublicKey($0.publicKey) != nil || P256.Signing.PublicKey($0.publicKey) != nil }
        return ecc ?? certificates.first
    }

    public func beginLaunch() throws { try tpm.pcrReset(MeasuredLaunch.pcr) }

    public func extend(_ digest: [UInt8]) throws { try tpm.pcrExtend(MeasuredLaunch.pcr, sha256: digest) }

    public func sign(payload: Data, softwareVersion: String, securityVersion: Int, now: Date) throws -> SignedEvidence {
        let quoted = try tpm.quote(pcrs: [MeasuredLaunch.pcr], qualifyingData: Array(SHA256.hash(data: payload)))
        return SignedEvidence(signature: quoted.signatureDER, quote: quoted.attest)
    }

    public func counter(_ counter: MonotonicCounter) throws -> UInt64 {
        guard let raw = try tpm.counterValue(index: counter.nvIndex) else { return 0 }
        return raw - min(raw, try baseline(counter) ?? 0)
    }

    public func incrementCounter(_ counter: MonotonicCounter) throws -> UInt64 {
        let raw = try tpm.incrementCounter(index: counter.nvIndex)
        if let baseline = try baseline(counter) { return raw - min(raw, baseline) }
        // The first increment: its value less one is the baseline. (Were power lost before this
        // write, the counter would read from 0, its raw value — too high, never too low.)
        try tpm.writeOnce(index: counter.baselineIndex, value: raw - 1)
        return 1
    }

    private func baseline(_ counter: MonotonicCounter) throws -> UInt64? {
        try tpm.writeOnceValue(index: counter.baselineIndex)
    }

    /// Writes a counter's baseline as `incrementCounter` does; the tests use it to show the
    /// TPM refuses a second write.
    func writeBaseline(_ counter: MonotonicCounter, _ value: UInt64) throws {
        try tpm.writeOnce(index: counter.baselineIndex, value: value)
    }
}
