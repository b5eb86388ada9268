/// The parts of a marshalled TPM 2.0 `TPMS_ATTEST` (TPM 2.0 Part 2, 10.12.12) a verifier
/// needs, read with bounds checks: anything truncated or malformed throws, nothing traps.
struct TPMSAttest: Sendable {
    struct PCRSelection: Sendable, Equatable {
        let hashAlgorithm: UInt16
        let pcrs: [Int]
    }

    static let generatedValue: UInt32 = 0xff54_4347  // "\xffTCG"
    static let quoteType: UInt16 = 0x8018  // TPM_ST_ATTEST_QUOTE
    static let sha256: UInt16 = 0x000b  // TPM_ALG_SHA256

    let magic: UInt32
    let type: UInt16
    let qualifiedSigner: [UInt8]
    /// The caller's qualifying data (for Rampart, SHA-256 of the evidence payload).
    let extraData: [UInt8]
    let clock: UInt64
    let resetCount: UInt32
    let restartCount: UInt32
    let firmwareVersion: UInt64
    /// For a quote: the PCRs covered, and the digest of their values in ascending order.
    let pcrSelections: [PCRSelection]
    let pcrDigest: [UInt8]

    var isQuote: Bool { magic == Self.generatedValue && type == Self.quoteType }

    struct Malformed: Error {}

    init(_ bytes: [UInt8]) throws {
        var reader = Reader(bytes: bytes)
        magic = try reader.uint32()
        type = try reader.uint16()
        qualifiedSigner = try reader.sized()
        extraData = try reader.sized()
        clock = try reader.uint64()
        resetCount = try reader.uint32()
        restartCount = try reader.uint32()
        _ = try reader.byte()  // safe
        firmwareVersion = try reader.uint64()
        guard type == Self.quoteType else {
            pcrSelections = []
            pcrDigest = []
            return
        }
        let count = try reader.uint32()
        guard count <= 16 else { throw Malformed() }
        var selections: [PCRSelection] = []
        for _ in 0..<count {
            let hash = try reader.uint16()
            let size = Int(try reader.byte())
            let bitmap = try reader.take(size)
            var pcrs: [Int] = []
            for (index, byte) in bitmap.enumerated() {
                for bit in 0..<8 where byte & (1 << bit) != 0 { pcrs.append(index * 8 + bit) }
            }
            selections.append(PCRSelection(hashAlgorithm: hash, pcrs: pcrs))
        }
        pcrSelections = selections
        pcrDigest = try reader.sized()
        guard reader.isAtEnd else { throw Malformed() }
    }

    /// A big-endian reader over the marshalled bytes.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var isAtEnd: Bool { offset == bytes.count }

        mutating func take(_ count: Int) throws -> [UInt8] {
            guard count >= 0, bytes.count - offset >= count else { throw Malformed() }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }
        mutating func byte() throws -> UInt8 { try take(1)[0] }
        mutating func uint16() throws -> UInt16 { try take(2).reduce(0) { $0 << 8 | UInt16($1) } }
        mutating func uint32() throws -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
        mutating func uint64() throws -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
        /// A TPM2B: a 16-bit size, then that many bytes.
        mutating func sized() throws -> [UInt8] { try take(Int(try uint16())) }
    }
}
