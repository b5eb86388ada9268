public import Crypto
public import Foundation
import RampartModel
import SwiftASN1
public import X509

/// A device certificate as issued: its DER and the facts the service records about it.
public struct IssuedCertificate: Sendable {
    public let derBytes: [UInt8]
    /// 20 octets, positive (see ``CertificateAuthority/issueDeviceCertificate(deviceID:publicKey:attestation:now:lifetime:)``).
    public let serialNumber: [UInt8]
    /// As written in the certificate: whole seconds.
    public let notValidAfter: Date

    public var serialHex: String { serialNumber.hexString }

    /// The certificate in PEM, ending with a newline.
    public var pemString: String { PEM.encode(derBytes, label: "CERTIFICATE") }

    /// The certificate parsed by swift-certificates.
    public var certificate: Certificate {
        get throws { try Certificate(derEncoded: derBytes) }
    }
}

/// The P-256 key a device certificate certifies, kept as the DER SubjectPublicKeyInfo the
/// device sent. Encoding a parsed key again costs a field inversion in BoringSSL, as much as
/// a third of the certificate's signature; this way attestation never pays it.
public struct ClientPublicKey: Sendable, Equatable {
    /// The 91 bytes of a P-256 SubjectPublicKeyInfo with an uncompressed point.
    public let derRepresentation: [UInt8]

    /// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (no unused bits) }, up
    /// to the point.
    static let prefix: [UInt8] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ]

    /// Accepts exactly the canonical encoding (uncompressed point) of a point on the curve.
    public init(derRepresentation bytes: some DataProtocol) throws {
        let bytes = Array(bytes)
        guard bytes.count == Self.prefix.count + 65, bytes.starts(with: Self.prefix),
            P256Point.isOnCurve(x963: bytes[Self.prefix.count...])
        else {
            throw PKIError(
                code: "invalid_client_key", message: "not a DER SubjectPublicKeyInfo of a P-256 point in uncompressed form")
        }
        derRepresentation = bytes
    }

    public init(_ key: P256.Signing.PublicKey) {
        derRepresentation = Array(key.derRepresentation)
    }

    /// RFC 7093 method 1 over the point, as for every other key Rampart certifies.
    var keyIdentifier: ArraySlice<UInt8> {
        RampartPKI.keyIdentifier(ofKeyBits: derRepresentation[Self.prefix.count...])
    }
}

extension CertificateAuthority {
    /// A device's 24-hour client certificate: O = "Rampart device", CN = device ID,
    /// digitalSignature, clientAuth, and the attestation result (software version and
    /// measurements) as DiceTcbInfo. `lifetime` shortens it (a recovery certificate).
    ///
    /// One is issued for every attestation, so it is written straight to DER around the
    /// parts all of this CA's device certificates share (``DeviceCertificateForm``), not
    /// through swift-certificates' builder, which encodes the to-be-signed part twice and
    /// the names and extensions from their structures each time. The bytes are the ones that
    /// builder would write for the same fields; `CertificateAuthorityTests` compares them.
    public func issueDeviceCertificate(
        deviceID: String, publicKey: ClientPublicKey, attestation: DiceTcbInfo, now: Date, lifetime: TimeInterval? = nil
    ) throws -> IssuedCertificate {
        let form = deviceCertificateForm
        let serial = Self.randomSerialNumber()
        let notBefore = UTCSeconds(now.addingTimeInterval(-Lifetime.clockSkew))
        let notAfter = UTCSeconds(
            min(lifetime.map { now.addingTimeInterval($0) } ?? Lifetime.device.end(from: now), certificate.notValidAfter))
        // The whole certificate is written into one buffer, each node's length filled in
        // once its content is written (``DER/appendNode(tag:to:content:)``); the part to be
        // signed is hashed where it lies.
        var der: [UInt8] = []
        der.reserveCapacity(1024)
        try DER.appendNode(tag: 0x30, to: &der) { certificate in
            let tbsStart = certificate.count
            DER.appendNode(tag: 0x30, to: &certificate) { tbs in
                tbs += DeviceCertificateForm.version
                // Positive and without a leading zero (randomSerialNumber): the INTEGER's content as it is.
                DER.appendNode(tag: 0x02, to: &tbs) { $0 += serial }
                tbs += DeviceCertificateForm.ecdsaWithSHA256
                tbs += form.issuerName
                DER.appendNode(tag: 0x30, to: &tbs) { validity in
                    notBefore.append(to: &validity)
                    notAfter.append(to: &validity)
                }
                DeviceCertificateForm.appendSubject(deviceID: deviceID, to: &tbs)
                tbs += publicKey.derRepresentation
                DER.appendNode(tag: 0xa3, to: &tbs) { explicit in
                    DER.appendNode(tag: 0x30, to: &explicit) { extensions in
                        extensions += DeviceCertificateForm.leadingExtensions
                        DeviceCertificateForm.appendSubjectKeyIdentifier(publicKey.keyIdentifier, to: &extensions)
                        extensions += form.authorityKeyIdentifier
                        attestation.appendExtension(to: &extensions)
                    }
                }
            }
            let digest = SHA256.hash(data: certificate[tbsStart...])
            let signature = try signingKey.signature(for: digest).rawRepresentation
            certificate += DeviceCertificateForm.ecdsaWithSHA256
            DER.appendNode(tag: 0x03, to: &certificate) { bits in
                bits.append(0)  // no unused bits
                ECDSASignatureDER.append(raw: signature, to: &bits)
            }
        }
        return IssuedCertificate(derBytes: der, serialNumber: serial, notValidAfter: notAfter.date)
    }

    /// 20 octets, as many as RFC 5280 allows, positive and without a leading zero (158
    /// random bits). `Certificate.SerialNumber()` makes 20 random bytes, which take 21
    /// octets whenever the first has its top bit set.
    static func randomSerialNumber() -> [UInt8] {
        var bytes = RandomPool.bytes(20)
        bytes[0] = bytes[0] & 0x7f | 0x40
        return bytes
    }
}

/// The DER every device certificate of one CA shares: its issuer name and authority key
/// identifier, and the constant fields and extensions of the device profile.
struct DeviceCertificateForm: Sendable {
    /// `[0] EXPLICIT INTEGER 2`: X.509 v3.
    static let version: [UInt8] = [0xa0, 0x03, 0x02, 0x01, 0x02]
    /// AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758: no parameters).
    static let ecdsaWithSHA256: [UInt8] = [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]
    /// Critical basicConstraints (not a CA), critical keyUsage digitalSignature, extKeyUsage clientAuth.
    static let leadingExtensions: [UInt8] = {
        let extensions = try! Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth])
        }
        return extensions.flatMap { try! DER.encoded($0) }
    }()

    /// The subject's first RDN: O = "Rampart device", a UTF8String.
    static let organization: [UInt8] = [0x31, 0x17, 0x30, 0x15, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x0e] + Array("Rampart device".utf8)

    /// The subject name, O = "Rampart device", CN = the device ID (UTF8String), as
    /// swift-certificates' `DistinguishedName` builder writes it.
    static func appendSubject(deviceID: String, to bytes: inout [UInt8]) {
        DER.appendNode(tag: 0x30, to: &bytes) { name in
            name += organization
            DER.appendNode(tag: 0x31, to: &name) { set in
                DER.appendNode(tag: 0x30, to: &set) { attribute in
                    attribute += [0x06, 0x03, 0x55, 0x04, 0x03]
                    DER.appendNode(tag: 0x0c, to: &attribute) { DER.appendUTF8(deviceID, to: &$0) }
                }
            }
        }
    }

    /// The subjectKeyIdentifier extension (2.5.29.14, not critical): an OCTET STRING
    /// holding the OCTET STRING of `keyID`.
    static func appendSubjectKeyIdentifier(_ keyID: ArraySlice<UInt8>, to bytes: inout [UInt8]) {
        DER.appendNode(tag: 0x30, to: &bytes) { ext in
            ext += [0x06, 0x03, 0x55, 0x1d, 0x0e]
            DER.appendNode(tag: 0x04, to: &ext) { value in
                DER.appendNode(tag: 0x04, to: &value) { $0 += keyID }
            }
        }
    }

    let issuerName: [UInt8]
    let authorityKeyIdentifier: [UInt8]

    init(issuer: Certificate, keyID: ArraySlice<UInt8>) {
        issuerName = try! DER.encoded(issuer.subject)
        authorityKeyIdentifier = try! DER.encoded(
            Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: keyID), critical: false))
    }
}

/// A time in whole seconds (rounded, as swift-certificates rounds), written as RFC 5280
/// says: UTCTime for the years 1950–2049, GeneralizedTime otherwise.
struct UTCSeconds {
    let seconds: Int64

    init(_ date: Date) { seconds = Int64(date.timeIntervalSince1970.rounded()) }

    var date: Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    /// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as a whole node.
    func append(to bytes: inout [UInt8]) {
        let (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let day = secondOfDay < 0 ? days - 1 : days
        let second = Int(secondOfDay < 0 ? secondOfDay + 86_400 : secondOfDay)
        let (year, month, dayOfMonth) = Self.civil(daysSinceEpoch: day)
        let utc = (1950..<2050).contains(year)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        bytes.append(utc ? 0x17 : 0x18)
        bytes.append(utc ? 13 : 15)
        digits(utc ? year % 100 : year, utc ? 2 : 4)
        digits(month, 2)
        digits(dayOfMonth, 2)
        digits(second / 3600, 2)
        digits(second / 60 % 60, 2)
        digits(second % 60, 2)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (the days-to-civil algorithm
    /// of Howard Hinnant's "chrono-compatible low-level date algorithms").
    static func civil(daysSinceEpoch days: Int64) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }
}

extension DER {
    /// Appends a node whose content `content` writes after the tag, then fills in its
    /// definite length: one octet below 128, else the long form, the content moved up to make
    /// room (rarely: only the certificate, its to-be-signed part and its extensions are longer).
    static func appendNode(tag: UInt8, to bytes: inout [UInt8], content: (inout [UInt8]) throws -> Void) rethrows {
        bytes.append(tag)
        let lengthAt = bytes.count
        bytes.append(0)
        try content(&bytes)
        let count = bytes.count - lengthAt - 1
        guard count >= 0x80 else {
            bytes[lengthAt] = UInt8(count)
            return
        }
        let octets = (Int.bitWidth - count.leadingZeroBitCount + 7) / 8
        bytes[lengthAt] = 0x80 | UInt8(octets)
        withUnsafeBytes(of: count.bigEndian) { bytes.insert(contentsOf: $0.suffix(octets), at: lengthAt + 1) }
    }

    /// Appends a string's UTF-8 in one copy (appending its `utf8` view goes a byte at a time).
    static func appendUTF8(_ text: String, to bytes: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// One node's DER on its own.
    static func encoded(_ node: some DERSerializable) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(node)
        return serializer.serializedBytes
    }
}

/// ECDSA signatures between their DER form (`Ecdsa-Sig-Value`, RFC 3279: a SEQUENCE of two
/// INTEGERs) and their raw form (r and s, 32 bytes each, for P-256), without swift-crypto's
/// ASN.1 layer: both directions sit on attestation's path.
public enum ECDSASignatureDER {
    /// The DER of the raw P-256 signature `raw` (64 bytes): minimal INTEGERs, as BoringSSL
    /// and swift-crypto write them.
    public static func encode(raw: some Collection<UInt8>) -> [UInt8] {
        var der: [UInt8] = []
        der.reserveCapacity(72)
        append(raw: raw, to: &der)
        return der
    }

    /// Appends the DER of the raw P-256 signature `raw` to `bytes`.
    static func append(raw: some Collection<UInt8>, to bytes: inout [UInt8]) {
        precondition(raw.count == 64, "a P-256 signature is r and s, 32 bytes each")
        let raw = Array(raw)
        DER.appendNode(tag: 0x30, to: &bytes) { sequence in
            for half in [raw[0..<32], raw[32..<64]] {
                var magnitude = half.drop { $0 == 0 }
                if magnitude.isEmpty { magnitude = half.suffix(1) }
                DER.appendNode(tag: 0x02, to: &sequence) { integer in
                    if magnitude.first! >= 0x80 { integer.append(0) }
                    integer += magnitude
                }
            }
        }
    }

    /// The raw form (64 bytes) of a P-256 signature in strict DER, or nil for anything else:
    /// another length form, a non-minimal or negative INTEGER, one wider than 32 bytes,
    /// trailing bytes. Callers leave what this refuses to swift-crypto's parser.
    public static func raw(der: some Collection<UInt8>) -> [UInt8]? {
        let bytes = Array(der)
        guard bytes.count >= 8, bytes[0] == 0x30, bytes[1] < 0x80, Int(bytes[1]) == bytes.count - 2 else { return nil }
        var raw = [UInt8](repeating: 0, count: 64)
        var index = 2
        for half in 0..<2 {
            guard index + 2 <= bytes.count, bytes[index] == 0x02 else { return nil }
            let length = Int(bytes[index + 1])
            let start = index + 2
            guard length >= 1, length <= 33, start + length <= bytes.count else { return nil }
            let integer = bytes[start..<start + length]
            // Positive and minimal: no sign bit; a leading zero only before a set sign bit.
            guard integer.first! < 0x80 else { return nil }
            if length > 1, integer.first! == 0, integer[start + 1] < 0x80 { return nil }
            let magnitude = integer.first! == 0 && length > 1 ? integer.dropFirst() : integer
            guard magnitude.count <= 32 else { return nil }
            let end = 32 * (half + 1)
            raw.replaceSubrange(end - magnitude.count..<end, with: magnitude)
            index = start + length
        }
        return index == bytes.count ? raw : nil
    }
}
