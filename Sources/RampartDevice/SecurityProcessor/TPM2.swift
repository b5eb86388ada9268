import CTSS2
import Foundation

// A thin, synchronous wrapper around the TPM 2.0 ESYS API (tpm2-tss) for the device runtime:
// one attestation key, SHA-256 PCRs, quotes, signatures, an NV monotonic counter and the
// endorsement-key certificates. Call sequences follow docs/tpm-esys-notes.md.

/// A failed TPM command, or a call this wrapper refused before reaching the TPM.
public struct TPMError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The ESYS function (`Esys_Quote`) or wrapper method (`sign`) that failed.
    public let operation: String
    /// The TSS2 response code; nil when the wrapper refused the call itself.
    /// TPM codes have no layer bits (`0x902` object memory, `0x18b` handle); ESYS adds `0x7xxxx`.
    public let returnCode: UInt32?
    /// `Tss2_RC_Decode` text for a response code, otherwise why the call was refused.
    public let detail: String

    public var description: String {
        guard let returnCode else { return "\(operation): \(detail)" }
        return "\(operation) failed with 0x\(String(returnCode, radix: 16)): \(detail)"
    }

    /// TPM2_RC_OBJECT_MEMORY: every transient object slot is in use (a resource-manager-less
    /// TPM such as swtpm keeps objects that a crashed process never flushed).
    public static let objectMemory: UInt32 = CTSS2_RC_OBJECT_MEMORY

    init(_ operation: String, returnCode: TSS2_RC) {
        self.operation = operation
        self.returnCode = returnCode
        // Tss2_RC_Decode returns a thread-local static buffer: copy it out at once.
        self.detail = Tss2_RC_Decode(returnCode).map { String(cString: $0) } ?? "unknown response code"
    }

    init(_ operation: String, _ detail: String) {
        self.operation = operation
        self.returnCode = nil
        self.detail = detail
    }
}

/// One open TPM: an ESYS context on a TCTI, with the attestation key (AK) loaded.
///
/// Not thread-safe (neither is an ESYS context), so not `Sendable`: own it from one actor.
/// Every method issues blocking TPM commands.
///
/// Authorisation uses empty passwords throughout: the endorsement hierarchy for the AK and
/// the owner hierarchy for the NV counter. That is the state of swtpm and of a TPM nobody
/// has taken ownership of.
public final class TPM2 {
    /// The `unique.ecc.x` label in the AK template. A primary key is derived from the hierarchy
    /// seed and its template, so this label makes the AK ours, and the same key on every start.
    public static let attestationKeyLabel = "rampart-ak-v1"

    /// TCG EK certificate indices: RSA 2048, ECC P-256, then the "high range" RSA/ECC ones.
    public static let endorsementKeyCertificateIndices: [UInt32] = [
        0x01c0_0002, 0x01c0_000a, 0x01c0_0012, 0x01c0_0014, 0x01c0_0016, 0x01c0_0018,
    ]

    /// PCRs 0–23: the PC Client bank size, and what a 3-byte selection bitmap addresses.
    public static let pcrCount = 24

    /// The largest input to `sign(_:)`: one `TPM2B_MAX_BUFFER` (TPM2_MAX_DIGEST_BUFFER).
    public static let maxSignInput = Int(TPM2_MAX_DIGEST_BUFFER)

    private var context: OpaquePointer?
    private var tcti: OpaquePointer?
    /// The AK's ESYS handle; ESYS_TR_NONE until it is created.
    private var akHandle: ESYS_TR = ESYS_TR_NONE
    private var akSPKI: [UInt8] = []

    /// Opens the TPM behind `tcti` ("swtpm:host=127.0.0.1,port=2321", "device:/dev/tpmrm0"),
    /// starts it if needed and loads the AK.
    ///
    /// - Parameter flushTransientObjects: flush every transient object already loaded before
    ///   creating the AK. Without a resource manager (swtpm, `/dev/tpm0`) objects leaked by a
    ///   crashed process stay loaded and the TPM runs out of slots (3 on swtpm). Pass false only
    ///   when another user of the same TPM may have objects loaded. Under `/dev/tpmrm0` the
    ///   kernel isolates handles, so this finds nothing.
    public init(tcti configuration: String, flushTransientObjects: Bool = true) throws {
        // ESYS logs expected failures (absent NV index, refused command) to stderr. Errors reach
        // the caller as TPMError instead. Must happen before the first ESYS call reads it.
        setenv("TSS2_LOG", "all+none", 0)

        var rc = Tss2_TctiLdr_Initialize(configuration, &tcti)
        guard rc == TSS2_RC_SUCCESS else { throw TPMError("Tss2_TctiLdr_Initialize(\(configuration))", returnCode: rc) }
        // From here on a throw runs deinit, which releases whatever was set up.
        rc = Esys_Initialize(&context, tcti, nil)
        guard rc == TSS2_RC_SUCCESS else { throw TPMError("Esys_Initialize", returnCode: rc) }

        // swtpm with startup-clear, and firmware on real hardware, have started the TPM already:
        // TPM2_RC_INITIALIZE then just means "already started".
        rc = Esys_Startup(context, TPM2_SU_CLEAR)
        guard rc == TSS2_RC_SUCCESS || rc == CTSS2_RC_INITIALIZE else { throw TPMError("Esys_Startup", returnCode: rc) }

        if flushTransientObjects { try flushLoadedTransientObjects() }
        try createAttestationKey()
    }

    deinit {
        // The AK is transient: without a resource manager it would outlive us in the TPM.
        if akHandle != ESYS_TR_NONE { _ = Esys_FlushContext(context, akHandle) }
        if context != nil { Esys_Finalize(&context) }
        if tcti != nil { Tss2_TctiLdr_Finalize(&tcti) }
    }

    // MARK: - Attestation key

    /// The AK: its ESYS handle (valid for the life of this object) and its public key as a
    /// DER SubjectPublicKeyInfo. The device ID is SHA-256 of that SPKI.
    ///
    /// The AK is a restricted ECC P-256 ECDSA-SHA256 signing key, a primary key under the
    /// endorsement hierarchy. It is created in `init`, and recreating it yields the same key,
    /// also after a TPM restart or `TPM2_Clear` (which replaces the owner seed, not this one).
    public func attestationKey() -> (handle: UInt32, spkiDER: [UInt8]) {
        (akHandle, akSPKI)
    }

    /// The AK public key as a 91-byte DER SubjectPublicKeyInfo (P-256, uncompressed point).
    public func akPublicKeySPKI() -> [UInt8] { akSPKI }

    private func createAttestationKey() throws {
        var template = TPM2B_PUBLIC()  // Swift zero-fills imported C structs; size 0 lets ESYS marshal it
        template.publicArea.type = TPM2_ALG_ECC
        template.publicArea.nameAlg = TPM2_ALG_SHA256
        // RESTRICTED: the key signs only what the TPM produced itself (TPMS_ATTEST) or hashed
        // and vouched for with a ticket, which is what lets a verifier trust its quotes.
        template.publicArea.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED
            | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
            | TPMA_OBJECT_USERWITHAUTH
        template.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL
        // A restricted signing key must name its scheme; a NULL scheme is refused.
        template.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA
        template.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256
        template.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256
        template.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL
        template.publicArea.unique.ecc.x.size = try fill(
            &template.publicArea.unique.ecc.x.buffer, with: Array(Self.attestationKeyLabel.utf8), what: "AK label")

        var sensitive = TPM2B_SENSITIVE_CREATE()  // empty auth, no data
        var outsideInfo = TPM2B_DATA()
        var creationPCR = TPML_PCR_SELECTION()
        var handle: ESYS_TR = ESYS_TR_NONE
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        defer { Esys_Free(outPublic) }
        // Creation data, hash and ticket are not needed: NULL tells ESYS not to return them.
        try check(
            Esys_CreatePrimary(
                context, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                &sensitive, &template, &outsideInfo, &creationPCR, &handle, &outPublic, nil, nil, nil),
            "Esys_CreatePrimary")
        akHandle = handle  // owned from here on: deinit flushes it

        guard let outPublic, outPublic.pointee.publicArea.type == TPM2_ALG_ECC,
            outPublic.pointee.publicArea.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256
        else { throw TPMError("Esys_CreatePrimary", "the TPM returned a key that is not ECC P-256") }
        var point = outPublic.pointee.publicArea.unique.ecc
        guard point.x.size <= 32, point.y.size <= 32 else {
            throw TPMError("Esys_CreatePrimary", "the TPM returned a P-256 point with oversized coordinates")
        }
        akSPKI = p256SPKIPrefix + [0x04]
            + leftPadded(bytes(of: &point.x.buffer, count: point.x.size), to: 32)
            + leftPadded(bytes(of: &point.y.buffer, count: point.y.size), to: 32)
    }

    /// Flushes every loaded transient object (see `init`). Best effort: an object whose public
    /// area cannot be read (a hash sequence) has no ESYS handle and is left alone.
    private func flushLoadedTransientObjects() throws {
        for handle in try loadedHandles(from: CTSS2_TRANSIENT_FIRST) {
            var object: ESYS_TR = ESYS_TR_NONE
            guard Esys_TR_FromTPMPublic(context, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &object)
                == TSS2_RC_SUCCESS
            else { continue }
            if Esys_FlushContext(context, object) != TSS2_RC_SUCCESS { _ = Esys_TR_Close(context, &object) }
        }
    }

    // MARK: - PCRs (SHA-256 bank)

    /// Resets PCR `index`. At locality 0 only PCR 16 (debug) and 23 (application) allow it.
    public func pcrReset(_ index: Int) throws {
        try checkPCRIndex(index, "pcrReset")
        try check(
            Esys_PCR_Reset(context, ESYS_TR_PCR0 + ESYS_TR(index), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE),
            "Esys_PCR_Reset")
    }

    /// Extends PCR `index` of the SHA-256 bank: PCR := SHA-256(PCR ‖ digest).
    public func pcrExtend(_ index: Int, sha256 digest: [UInt8]) throws {
        try checkPCRIndex(index, "pcrExtend")
        guard digest.count == 32 else { throw TPMError("pcrExtend", "a SHA-256 digest is 32 bytes, not \(digest.count)") }
        var values = TPML_DIGEST_VALUES()
        values.count = 1
        values.digests.0.hashAlg = TPM2_ALG_SHA256
        _ = try fill(&values.digests.0.digest.sha256, with: digest, what: "PCR digest")
        try check(
            Esys_PCR_Extend(context, ESYS_TR_PCR0 + ESYS_TR(index), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &values),
            "Esys_PCR_Extend")
    }

    /// Reads SHA-256 PCR values, keyed by index.
    ///
    /// One TPM2_PCR_Read returns at most 8 digests, so this reads in rounds. If a PCR changes
    /// between rounds (the TPM's update counter moves) it starts again, so the result is one
    /// consistent snapshot. Throws if a requested PCR is not in the TPM's SHA-256 bank.
    public func pcrRead(_ indices: [Int]) throws -> [Int: [UInt8]] {
        for index in indices { try checkPCRIndex(index, "pcrRead") }
        let requested = Set(indices)
        for _ in 0..<4 {
            if let snapshot = try pcrReadRounds(requested) { return snapshot }
        }
        throw TPMError("pcrRead", "the PCRs kept changing while being read")
    }

    /// One attempt for `pcrRead`; nil when the PCR update counter changed in between.
    private func pcrReadRounds(_ requested: Set<Int>) throws -> [Int: [UInt8]]? {
        var result: [Int: [UInt8]] = [:]
        var pending = requested
        var firstCounter: UInt32?
        while !pending.isEmpty {
            var selection = try sha256Selection(pending)
            var updateCounter: UInt32 = 0
            var selectionOut: UnsafeMutablePointer<TPML_PCR_SELECTION>?
            var values: UnsafeMutablePointer<TPML_DIGEST>?
            defer {
                Esys_Free(selectionOut)
                Esys_Free(values)
            }
            try check(
                Esys_PCR_Read(
                    context, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &selection, &updateCounter, &selectionOut, &values),
                "Esys_PCR_Read")
            guard let selectionOut, let values else { throw TPMError("Esys_PCR_Read", "no output") }
            if let firstCounter, firstCounter != updateCounter { return nil }
            firstCounter = updateCounter

            // Digests come in selection order: bank by bank, ascending index within a bank.
            let returned = selectedIndices(selectionOut, bank: TPM2_ALG_SHA256)
            guard !returned.isEmpty else { break }  // the rest is not in the bank
            var digests = elements(of: &values.pointee.digests, count: values.pointee.count, as: TPM2B_DIGEST.self)
            guard digests.count == returned.count else {
                throw TPMError("Esys_PCR_Read", "\(returned.count) PCRs selected but \(digests.count) digests returned")
            }
            for (position, index) in returned.enumerated() {
                guard pending.contains(index), digests[position].size == 32 else {
                    throw TPMError("Esys_PCR_Read", "unexpected value for PCR \(index)")
                }
                result[index] = bytes(of: &digests[position].buffer, count: 32)
                pending.remove(index)
            }
        }
        if let missing = pending.min() {
            throw TPMError("pcrRead", "PCR \(missing) is not in the TPM's SHA-256 bank")
        }
        return result
    }

    // MARK: - Quote and sign

    /// Quotes SHA-256 PCRs `pcrs` with the AK.
    ///
    /// - Parameter qualifyingData: the verifier's nonce, at most 64 bytes; it comes back as
    ///   `extraData` in the attest structure.
    /// - Returns: `attest`, the marshalled TPMS_ATTEST exactly as signed (parse it with
    ///   `TPMSAttest`), and the ECDSA-SHA256 signature over it as a DER ECDSA-Sig-Value.
    public func quote(pcrs: [Int], qualifyingData: [UInt8]) throws -> (attest: [UInt8], signatureDER: [UInt8]) {
        for index in pcrs { try checkPCRIndex(index, "quote") }
        var nonce = TPM2B_DATA()
        nonce.size = try fill(&nonce.buffer, with: qualifyingData, what: "qualifying data")
        var selection = try sha256Selection(Set(pcrs))
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = TPM2_ALG_NULL  // the AK's own scheme: ECDSA with SHA-256
        var quoted: UnsafeMutablePointer<TPM2B_ATTEST>?
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        defer {
            Esys_Free(quoted)
            Esys_Free(signature)
        }
        try check(
            Esys_Quote(
                context, akHandle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                &nonce, &scheme, &selection, &quoted, &signature),
            "Esys_Quote")
        guard let quoted, let signature else { throw TPMError("Esys_Quote", "no output") }
        let attest = bytes(of: &quoted.pointee.attestationData, count: quoted.pointee.size)
        return (attest, try ecdsaSignatureDER(signature, "Esys_Quote"))
    }

    /// Signs `data` with the AK: the result is a DER ECDSA-Sig-Value over SHA-256(`data`),
    /// verifiable as ordinary ECDSA-SHA256 with the AK public key.
    ///
    /// The restricted AK signs an external digest only with a ticket proving the TPM hashed it,
    /// so the TPM hashes `data` first (TPM2_Hash); that limits `data` to `maxSignInput` bytes.
    /// Data starting with the TPM_GENERATED magic gets no ticket (it could pose as an attest
    /// structure) and is refused.
    public func sign(_ data: [UInt8]) throws -> [UInt8] {
        guard data.count <= Self.maxSignInput else {
            throw TPMError("sign", "\(data.count) bytes is over the \(Self.maxSignInput)-byte TPM hash input; sign a digest of it")
        }
        guard !startsWithGeneratedMagic(data) else {
            throw TPMError("sign", "data starting with TPM_GENERATED_VALUE (ff544347) cannot be signed by a restricted key")
        }
        var buffer = TPM2B_MAX_BUFFER()
        buffer.size = try fill(&buffer.buffer, with: data, what: "data")
        var digest: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_HASHCHECK>?
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        defer {
            Esys_Free(digest)
            Esys_Free(ticket)
            Esys_Free(signature)
        }
        // The ticket must name the AK's hierarchy.
        try check(
            Esys_Hash(
                context, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &buffer, TPM2_ALG_SHA256, ESYS_TR_RH_ENDORSEMENT,
                &digest, &ticket),
            "Esys_Hash")
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = TPM2_ALG_NULL
        try check(
            Esys_Sign(
                context, akHandle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, digest, &scheme, ticket, &signature),
            "Esys_Sign")
        guard let signature else { throw TPMError("Esys_Sign", "no output") }
        return try ecdsaSignatureDER(signature, "Esys_Sign")
    }

    // MARK: - NV monotonic counter

    /// The value of the NV counter at `index`, or nil if the index does not exist or has never
    /// been incremented. Throws if the index exists but is not an 8-byte counter.
    ///
    /// A missing index may mean the owner hierarchy was cleared (TPM2_Clear deletes owner
    /// indices), not only a first boot.
    public func counterValue(index: UInt32) throws -> UInt64? {
        guard var nv = try openNVIndex(index) else { return nil }
        defer { _ = Esys_TR_Close(context, &nv) }
        guard try isWrittenCounter(nv, index) else { return nil }
        return try readCounter(nv)
    }

    /// Increments the NV counter at `index` and returns the new value, first defining the index
    /// (an owner-authorised NT_COUNTER) if it does not exist.
    ///
    /// A newly defined counter starts at the highest value any counter in this TPM has had,
    /// so after an owner clear the value still never goes backwards.
    public func incrementCounter(index: UInt32) throws -> UInt64 {
        var nv: ESYS_TR
        if let existing = try openNVIndex(index) {
            nv = existing
        } else {
            nv = try defineCounter(index)
        }
        defer { _ = Esys_TR_Close(context, &nv) }
        _ = try isWrittenCounter(nv, index)
        try check(
            Esys_NV_Increment(context, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE),
            "Esys_NV_Increment")
        return try readCounter(nv)
    }

    // MARK: - Write-once NV values

    /// The 8-byte value written once at `index`, or nil if the index does not exist or was
    /// never written.
    public func writeOnceValue(index: UInt32) throws -> UInt64? {
        guard var nv = try openNVIndex(index) else { return nil }
        defer { _ = Esys_TR_Close(context, &nv) }
        let (attributes, size) = try nvPublic(nv)
        let type = TPM2_NT(truncatingIfNeeded: (attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT)
        guard type == TPM2_NT_ORDINARY, size == 8, attributes & TPMA_NV_WRITEDEFINE != 0 else {
            throw TPMError("NV", "NV index 0x\(String(index, radix: 16)) exists but is not a write-once 8-byte value")
        }
        guard attributes & TPMA_NV_WRITTEN != 0 else { return nil }
        return try readCounter(nv)
    }

    /// Defines an 8-byte ordinary index with TPMA_NV_WRITEDEFINE, writes `value` and locks it:
    /// from then on the TPM refuses every write (TPM_RC_NV_LOCKED) until the index is deleted.
    public func writeOnce(index: UInt32, value: UInt64) throws {
        var nv: ESYS_TR
        if let existing = try openNVIndex(index) {
            nv = existing
        } else {
            var auth = TPM2B_AUTH()
            var publicInfo = TPM2B_NV_PUBLIC()
            publicInfo.nvPublic.nvIndex = index
            publicInfo.nvPublic.nameAlg = TPM2_ALG_SHA256
            publicInfo.nvPublic.attributes = (TPMA_NV(TPM2_NT_ORDINARY) << TPMA_NV_TPM2_NT_SHIFT)
                | TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_WRITEDEFINE
            publicInfo.nvPublic.dataSize = 8
            nv = ESYS_TR_NONE
            try check(
                Esys_NV_DefineSpace(
                    context, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth, &publicInfo, &nv),
                "Esys_NV_DefineSpace(0x\(String(index, radix: 16)))")
        }
        defer { _ = Esys_TR_Close(context, &nv) }
        var data = TPM2B_MAX_NV_BUFFER()
        data.size = 8
        withUnsafeMutableBytes(of: &data.buffer) { raw in
            for offset in 0..<8 { raw[offset] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(offset))) }  // big-endian
        }
        try check(
            Esys_NV_Write(context, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data, 0),
            "Esys_NV_Write(0x\(String(index, radix: 16)))")
        try check(
            Esys_NV_WriteLock(context, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE),
            "Esys_NV_WriteLock(0x\(String(index, radix: 16)))")
    }

    private func defineCounter(_ index: UInt32) throws -> ESYS_TR {
        var auth = TPM2B_AUTH()
        var publicInfo = TPM2B_NV_PUBLIC()
        publicInfo.nvPublic.nvIndex = index
        publicInfo.nvPublic.nameAlg = TPM2_ALG_SHA256
        publicInfo.nvPublic.attributes = (TPMA_NV(TPM2_NT_COUNTER) << TPMA_NV_TPM2_NT_SHIFT)
            | TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD
        publicInfo.nvPublic.dataSize = 8
        var nv: ESYS_TR = ESYS_TR_NONE
        try check(
            Esys_NV_DefineSpace(
                context, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth, &publicInfo, &nv),
            "Esys_NV_DefineSpace(0x\(String(index, radix: 16)))")
        return nv
    }

    /// Whether the index has been written; throws unless it is an 8-byte NT_COUNTER.
    private func isWrittenCounter(_ nv: ESYS_TR, _ index: UInt32) throws -> Bool {
        let (attributes, size) = try nvPublic(nv)
        let type = TPM2_NT(truncatingIfNeeded: (attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT)
        guard type == TPM2_NT_COUNTER, size == 8 else {
            throw TPMError("counter", "NV index 0x\(String(index, radix: 16)) exists but is not a monotonic counter")
        }
        return attributes & TPMA_NV_WRITTEN != 0
    }

    private func readCounter(_ nv: ESYS_TR) throws -> UInt64 {
        var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>?
        defer { Esys_Free(data) }
        try check(
            Esys_NV_Read(context, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data),
            "Esys_NV_Read")
        guard let data, data.pointee.size == 8 else { throw TPMError("Esys_NV_Read", "a counter is 8 bytes") }
        return bytes(of: &data.pointee.buffer, count: 8).reduce(0) { $0 << 8 | UInt64($1) }  // big-endian
    }

    // MARK: - Endorsement key certificates

    /// The DER EK certificates the TPM maker stored in NV, in the order of
    /// `endorsementKeyCertificateIndices`; absent indices are skipped.
    ///
    /// Each is trimmed to the length in its DER header, since an index may be larger than its
    /// certificate. Contents that do not start with a DER SEQUENCE header that fits are returned
    /// whole, for the caller's X.509 parser to reject.
    public func endorsementKeyCertificates() throws -> [[UInt8]] {
        var certificates: [[UInt8]] = []
        var chunk: Int?
        for index in Self.endorsementKeyCertificateIndices {
            guard var nv = try openNVIndex(index) else { continue }
            defer { _ = Esys_TR_Close(context, &nv) }
            if chunk == nil { chunk = try nvBufferMax() }
            let contents = try readNV(nv, index: index, chunk: chunk ?? 512)
            certificates.append(Array(contents.prefix(derLength(contents) ?? contents.count)))
        }
        return certificates
    }

    /// Largest NV_Read the TPM accepts in one command (TPM2_PT_NV_BUFFER_MAX).
    private func nvBufferMax() throws -> Int {
        var more: TPMI_YES_NO = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        defer { Esys_Free(data) }
        try check(
            Esys_GetCapability(
                context, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES, CTSS2_PT_NV_BUFFER_MAX, 1,
                &more, &data),
            "Esys_GetCapability(NV_BUFFER_MAX)")
        guard let properties = data?.pointee.data.tpmProperties, properties.count >= 1,
            properties.tpmProperty.0.property == CTSS2_PT_NV_BUFFER_MAX
        else { return 512 }  // the PC Client minimum
        return max(1, min(Int(properties.tpmProperty.0.value), Int(TPM2_MAX_NV_BUFFER_SIZE)))
    }

    private func readNV(_ nv: ESYS_TR, index: UInt32, chunk: Int) throws -> [UInt8] {
        let (attributes, size) = try nvPublic(nv)
        // Certificate indices are readable with their own (empty) auth; otherwise try the owner.
        let authorization = attributes & TPMA_NV_AUTHREAD != 0 ? nv : ESYS_TR_RH_OWNER
        var contents: [UInt8] = []
        contents.reserveCapacity(Int(size))
        while contents.count < Int(size) {
            let length = min(chunk, Int(size) - contents.count)
            var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>?
            defer { Esys_Free(data) }
            try check(
                Esys_NV_Read(
                    context, authorization, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                    UInt16(length), UInt16(contents.count), &data),
                "Esys_NV_Read(0x\(String(index, radix: 16)))")
            guard let data, data.pointee.size > 0 else { throw TPMError("Esys_NV_Read", "no data returned") }
            contents += bytes(of: &data.pointee.buffer, count: min(Int(data.pointee.size), length))
        }
        return contents
    }

    // MARK: - NV and handle helpers

    /// An ESYS handle for NV index `index`, or nil if it is not defined. Close it with
    /// Esys_TR_Close. Existence is checked through the capability list first, so an absent
    /// index is not mistaken for another failure.
    private func openNVIndex(_ index: UInt32) throws -> ESYS_TR? {
        guard index >> 24 == CTSS2_NV_INDEX_FIRST >> 24 else {
            throw TPMError("NV", "0x\(String(index, radix: 16)) is not an NV index handle (0x01xxxxxx)")
        }
        guard try loadedHandles(from: index, limit: 1).first == index else { return nil }
        var nv: ESYS_TR = ESYS_TR_NONE
        try check(
            Esys_TR_FromTPMPublic(context, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv),
            "Esys_TR_FromTPMPublic(0x\(String(index, radix: 16)))")
        return nv
    }

    /// Attributes and data size of an NV index.
    private func nvPublic(_ nv: ESYS_TR) throws -> (attributes: TPMA_NV, size: UInt16) {
        var publicInfo: UnsafeMutablePointer<TPM2B_NV_PUBLIC>?
        var name: UnsafeMutablePointer<TPM2B_NAME>?
        defer {
            Esys_Free(publicInfo)
            Esys_Free(name)
        }
        try check(
            Esys_NV_ReadPublic(context, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &publicInfo, &name),
            "Esys_NV_ReadPublic")
        guard let info = publicInfo?.pointee.nvPublic else { throw TPMError("Esys_NV_ReadPublic", "no output") }
        return (info.attributes, info.dataSize)
    }

    /// TPM handles of the type given by the top byte of `first`, from `first` upwards.
    private func loadedHandles(from first: UInt32, limit: Int = .max) throws -> [UInt32] {
        var handles: [UInt32] = []
        var next = first
        while handles.count < limit {
            var more: TPMI_YES_NO = 0
            var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
            defer { Esys_Free(data) }
            try check(
                Esys_GetCapability(
                    context, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, next,
                    UInt32(min(limit - handles.count, 254)), &more, &data),
                "Esys_GetCapability(HANDLES)")
            guard var list = data?.pointee.data.handles else { break }
            let page = elements(of: &list.handle, count: list.count, as: TPM2_HANDLE.self)
                .filter { $0 >> 24 == first >> 24 }
            handles += page.prefix(limit - handles.count)
            guard more == TPM2_YES, let last = page.last, last < UInt32.max else { break }
            next = last + 1
        }
        return handles
    }

    // MARK: - Small helpers

    private func check(_ rc: TSS2_RC, _ operation: @autoclosure () -> String) throws {
        guard rc == TSS2_RC_SUCCESS else { throw TPMError(operation(), returnCode: rc) }
    }

    private func checkPCRIndex(_ index: Int, _ operation: String) throws {
        guard (0..<Self.pcrCount).contains(index) else {
            throw TPMError(operation, "PCR index \(index) is outside 0..<\(Self.pcrCount)")
        }
    }

    /// A one-bank (SHA-256) selection of `indices`; count 0 when empty.
    private func sha256Selection(_ indices: Set<Int>) throws -> TPML_PCR_SELECTION {
        var selection = TPML_PCR_SELECTION()
        guard !indices.isEmpty else { return selection }
        var bitmap = [UInt8](repeating: 0, count: Self.pcrCount / 8)
        for index in indices { bitmap[index / 8] |= 1 << (index % 8) }
        selection.count = 1
        selection.pcrSelections.0.hash = TPM2_ALG_SHA256
        selection.pcrSelections.0.sizeofSelect = UInt8(bitmap.count)
        _ = try fill(&selection.pcrSelections.0.pcrSelect, with: bitmap, what: "PCR bitmap")
        return selection
    }

    /// Ascending PCR indices selected for `bank` in a selection list.
    private func selectedIndices(_ list: UnsafeMutablePointer<TPML_PCR_SELECTION>, bank: TPM2_ALG_ID) -> [Int] {
        var indices: [Int] = []
        let count = list.pointee.count
        for var entry in elements(of: &list.pointee.pcrSelections, count: count, as: TPMS_PCR_SELECTION.self)
        where entry.hash == bank {
            for (byteIndex, byte) in bytes(of: &entry.pcrSelect, count: entry.sizeofSelect).enumerated() {
                for bit in 0..<8 where byte & (1 << bit) != 0 { indices.append(byteIndex * 8 + bit) }
            }
        }
        return indices.sorted()
    }

    private func startsWithGeneratedMagic(_ data: [UInt8]) -> Bool {
        data.count >= 4 && data.prefix(4).reduce(0) { $0 << 8 | UInt32($1) } == CTSS2_GENERATED_VALUE
    }
}

@available(*, unavailable, message: "an ESYS context is not thread-safe; own TPM2 from one actor")
extension TPM2: Sendable {}

// MARK: - C array and DER helpers

/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes, 0 unused bits)`;
/// the uncompressed point `04 ‖ X ‖ Y` follows.
private let p256SPKIPrefix: [UInt8] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
]

// C arrays import as tuples (TPM2B_MAX_NV_BUFFER.buffer has 2048 elements). These helpers take
// them `inout`, so they are only ever addressed: passing one by value makes the compiler's
// mandatory passes expand it element by element, which costs ~10 s of build time per use.

/// The first `count` bytes of a C byte array, clamped to its size.
private func bytes<Tuple>(of tuple: inout Tuple, count: some BinaryInteger) -> [UInt8] {
    withUnsafeBytes(of: &tuple) { Array($0.prefix(max(0, Int(count)))) }
}

/// Copies `source` into a C byte array (a tuple) and returns its length for the TPM2B `size`.
private func fill<Tuple>(_ tuple: inout Tuple, with source: [UInt8], what: String) throws -> UInt16 {
    let capacity = MemoryLayout<Tuple>.size
    guard source.count <= capacity else {
        throw TPMError("TPM2B", "\(what) is \(source.count) bytes, more than the \(capacity) the TPM structure holds")
    }
    withUnsafeMutableBytes(of: &tuple) { $0.copyBytes(from: source) }
    return UInt16(source.count)
}

/// The first `count` elements of a C array of structs, clamped to the array's capacity.
private func elements<Tuple, Element>(of tuple: inout Tuple, count: some BinaryInteger, as _: Element.Type) -> [Element] {
    let capacity = MemoryLayout<Tuple>.size / MemoryLayout<Element>.stride
    let n = min(max(0, Int(count)), capacity)
    return withUnsafeBytes(of: &tuple) { raw in
        (0..<n).map { raw.load(fromByteOffset: $0 * MemoryLayout<Element>.stride, as: Element.self) }
    }
}

private func leftPadded(_ value: [UInt8], to length: Int) -> [UInt8] {
    [UInt8](repeating: 0, count: max(0, length - value.count)) + value.suffix(length)
}

/// DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from a TPM ECDSA signature.
private func ecdsaSignatureDER(_ signature: UnsafeMutablePointer<TPMT_SIGNATURE>, _ operation: String) throws -> [UInt8] {
    let algorithm = signature.pointee.sigAlg
    guard algorithm == TPM2_ALG_ECDSA else {
        throw TPMError(operation, "expected an ECDSA signature, got algorithm 0x\(String(algorithm, radix: 16))")
    }
    var ecdsa = signature.pointee.signature.ecdsa
    let body = derInteger(bytes(of: &ecdsa.signatureR.buffer, count: ecdsa.signatureR.size))
        + derInteger(bytes(of: &ecdsa.signatureS.buffer, count: ecdsa.signatureS.size))
    return [0x30] + derLengthBytes(body.count) + body
}

/// A DER INTEGER for an unsigned big-endian value: minimal, with a 00 when the top bit is set.
private func derInteger(_ value: [UInt8]) -> [UInt8] {
    var magnitude = Array(value.drop { $0 == 0 })
    if magnitude.isEmpty || magnitude[0] & 0x80 != 0 { magnitude.insert(0, at: 0) }
    return [0x02] + derLengthBytes(magnitude.count) + magnitude
}

private func derLengthBytes(_ length: Int) -> [UInt8] {
    guard length >= 0x80 else { return [UInt8(length)] }
    var octets: [UInt8] = []
    var rest = length
    while rest > 0 {
        octets.insert(UInt8(rest & 0xff), at: 0)
        rest >>= 8
    }
    return [0x80 | UInt8(octets.count)] + octets
}

/// Total length (header + contents) of the DER SEQUENCE at the start of `bytes`, if its
/// header is well formed and the whole element fits in `bytes`.
private func derLength(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 2, bytes[0] == 0x30 else { return nil }
    if bytes[1] < 0x80 { return 2 + Int(bytes[1]) <= bytes.count ? 2 + Int(bytes[1]) : nil }
    let octets = Int(bytes[1] & 0x7f)
    guard (1...3).contains(octets), bytes.count >= 2 + octets else { return nil }
    let contents = bytes[2..<(2 + octets)].reduce(0) { $0 << 8 | Int($1) }
    let total = 2 + octets + contents
    return total <= bytes.count ? total : nil
}
