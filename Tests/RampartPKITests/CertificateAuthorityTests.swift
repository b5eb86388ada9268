import Crypto
import Foundation
import RampartModel
@testable import RampartPKI
import RampartTestSupport
import SwiftASN1
import Testing
import X509

@Suite struct CertificateAuthorityTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func hierarchyHasTheDocumentedLifetimes() throws {
        let root = try CertificateAuthority.makeRoot(commonName: "Root", now: Self.now)
        let intermediate = try root.issueSubordinate(commonName: "Intermediate", lifetime: .intermediate, maxPathLength: 1, now: Self.now)
        let tenant = try intermediate.issueSubordinate(commonName: "Tenant", lifetime: .tenantCA, maxPathLength: 0, now: Self.now)
        func years(_ certificate: Certificate) -> Int {
            Calendar(identifier: .gregorian).dateComponents([.year], from: Self.now, to: certificate.notValidAfter).year!
        }
        #expect(years(root.certificate) == 20)
        #expect(years(intermediate.certificate) == 10)
        #expect(years(tenant.certificate) == 2)
        // Back-dated for clock skew, and never outliving the issuer.
        #expect(tenant.certificate.notValidBefore == Self.now.addingTimeInterval(-Lifetime.clockSkew))
        let late = try root.issueSubordinate(
            commonName: "Late", lifetime: .intermediate, maxPathLength: 0, now: Self.now.addingTimeInterval(15 * 365 * 86_400))
        #expect(late.certificate.notValidAfter == root.certificate.notValidAfter)
        let constraints = try #require(try tenant.certificate.extensions.basicConstraints)
        #expect(constraints == .isCertificateAuthority(maxPathLength: 0))
    }

    @Test func keysSurviveAPEMRoundTrip() throws {
        let root = try CertificateAuthority.makeRoot(commonName: "Root", now: Self.now)
        let loaded = try CertificateAuthority(certificatePEM: root.certificate.pemString, privateKeyPEM: root.privateKeyPEM)
        #expect(loaded.certificate == root.certificate)
        let child = try loaded.issueSubordinate(commonName: "Child", lifetime: .tenantCA, maxPathLength: 0, now: Self.now)
        #expect(child.certificate.issuer == root.certificate.subject)
        #expect(throws: PKIError.invalidPEM("")) {
            _ = try CertificateAuthority(certificatePEM: "garbage", privateKeyPEM: root.privateKeyPEM)
        }
        let bundle = try certificates(fromPEMBundle: root.certificate.pemString + child.certificate.pemString)
        #expect(bundle == [root.certificate, child.certificate])
    }

    @Test func sealedKeysOpenOnlyWithTheRightKeyAndContext() throws {
        let sealer = try KeySealer(encoded: String(repeating: "11", count: 32))
        let secret = Data("-----BEGIN PRIVATE KEY-----".utf8)
        let sealed = try sealer.seal(secret, context: "ca-1")
        #expect(try sealer.open(sealed, context: "ca-1") == secret)
        // Moved onto another row.
        #expect(throws: PKIError.sealedKeyInvalid("")) { try sealer.open(sealed, context: "ca-2") }
        // A tampered byte.
        var tampered = sealed
        tampered[tampered.count / 2] ^= 0x01
        #expect(throws: PKIError.sealedKeyInvalid("")) { try sealer.open(tampered, context: "ca-1") }
        // Another key.
        let other = try KeySealer(encoded: Data(repeating: 7, count: 32).base64EncodedString())
        #expect(throws: PKIError.sealedKeyInvalid("")) { try other.open(sealed, context: "ca-1") }
        // Keys of the wrong size are refused up front.
        #expect(throws: PKIError.self) { try KeySealer(encoded: "abcd") }
    }

    @Test func serverCertificateNamesTheService() throws {
        let root = try CertificateAuthority.makeRoot(commonName: "Root", now: Self.now)
        let key = P256.Signing.PrivateKey()
        let leaf = try root.issueServerCertificate(
            hostnames: ["localhost", "rampart.example"], ipAddresses: [[127, 0, 0, 1]], publicKey: key.publicKey, now: Self.now)
        let names = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("rampart.example")))
        let usage = try #require(try leaf.extensions.extendedKeyUsage)
        #expect(usage.contains(.serverAuth))
    }

    /// The on-curve check answers as swift-crypto (BoringSSL) does: for valid points, their
    /// negations, a coordinate one off, coordinates at or above p, random bytes, zeros.
    @Test func onCurveCheckAgreesWithSwiftCrypto() {
        func theirs(_ point: [UInt8]) -> Bool { (try? P256.Signing.PublicKey(x963Representation: [4] + point)) != nil }
        func plusOne(_ bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            for index in bytes.indices.reversed() {
                bytes[index] &+= 1
                if bytes[index] != 0 { break }
            }
            return bytes
        }
        let p: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 12) + [UInt8](repeating: 0xff, count: 12)
        var cases: [[UInt8]] = [[UInt8](repeating: 0, count: 64), [UInt8](repeating: 0xff, count: 64)]
        for _ in 0..<300 {
            let point = Array(P256.Signing.PrivateKey().publicKey.x963Representation.dropFirst())
            let x = Array(point[..<32]), y = Array(point[32...])
            // p − y: the point's negation, also on the curve.
            var negated = [UInt8](repeating: 0, count: 32)
            var borrow = 0
            for index in (0..<32).reversed() {
                let difference = Int(p[index]) - Int(y[index]) - borrow
                negated[index] = UInt8((difference + 256) % 256)
                borrow = difference < 0 ? 1 : 0
            }
            cases += [point, x + negated, x + plusOne(y), plusOne(x) + y, p + y, x + p, plusOne(p) + y]
            cases.append((0..<64).map { _ in UInt8.random(in: 0...255) })
        }
        var valid = 0
        for point in cases {
            let ours = P256Point.isOnCurve(x963: [4] + point)
            #expect(ours == theirs(point), "\(point.hexString)")
            if ours { valid += 1 }
        }
        #expect(valid >= 600)
        #expect(!P256Point.isOnCurve(x963: [2] + cases[2].prefix(32)))
        #expect(!P256Point.isOnCurve(x963: [3] + cases[2]))
    }

    /// Rampart's PEM encoder writes what swift-asn1's does, for every length around the
    /// 48-byte line boundary (a pattern through all byte values, and random bytes), under
    /// other labels, and a certificate reads back from it.
    @Test func pemEncodingMatchesSwiftASN1() throws {
        for length in 0..<200 {
            let pattern = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let random = (0..<length).map { _ in UInt8.random(in: 0...255) }
            for (der, label) in [(pattern, "CERTIFICATE"), (random, "CERTIFICATE"), (random, "EC PRIVATE KEY"), (pattern, "")] {
                #expect(PEM.encode(der, label: label) == PEMDocument(type: label, derBytes: der).pemString + "\n")
            }
        }
        let root = try CertificateAuthority.makeRoot(commonName: "Root", now: Self.now)
        #expect(try Certificate(pemEncoded: root.certificate.pemString) == root.certificate)
    }

    /// Device certificates' serial numbers take the 20 octets RFC 5280 allows, never 21,
    /// and are positive.
    @Test func serialNumbersFitRFC5280() throws {
        let root = try CertificateAuthority.makeRoot(commonName: "Root", now: Self.now)
        var seen = Set<[UInt8]>()
        for _ in 0..<64 {
            let leaf = try root.issueDeviceCertificate(
                deviceID: String(repeating: "a", count: 64), publicKey: .init(P256.Signing.PrivateKey().publicKey),
                attestation: DiceTcbInfo(
                    vendor: "Rampart", model: "rampartd", version: "1.0.0", securityVersion: 1, layer: 1, fwids: [[1, 2, 3]]),
                now: Self.now)
            let serial = leaf.serialNumber
            #expect(serial.count == 20)
            #expect(serial[0] < 0x80 && serial[0] != 0)
            seen.insert(serial)
        }
        #expect(seen.count == 64)
    }

    /// A client key is taken only as the canonical DER of a P-256 point, since the
    /// certificate carries the bytes as sent.
    @Test func clientKeysAreTakenOnlyInCanonicalForm() throws {
        let key = P256.Signing.PrivateKey().publicKey
        let canonical = Array(key.derRepresentation)
        #expect(try ClientPublicKey(derRepresentation: canonical).derRepresentation == canonical)
        var offCurve = canonical
        offCurve[offCurve.count - 1] ^= 0x01
        let refused: [(String, [UInt8])] = [
            ("compressed", Array(canonical.prefix(26)) + key.compressedRepresentation),
            ("off the curve", offCurve),
            ("trailing byte", canonical + [0]),
            ("P-384", Array(P384.Signing.PrivateKey().publicKey.derRepresentation)),
            ("empty", []),
        ]
        for (name, bytes) in refused {
            #expect(throws: PKIError(code: "invalid_client_key", message: ""), "\(name)") {
                _ = try ClientPublicKey(derRepresentation: bytes)
            }
        }
    }

    /// Device certificates are written straight to DER; what they say must be, byte for
    /// byte, what swift-certificates' builder writes for the same fields — across the leap
    /// day, the UTCTime/GeneralizedTime switch in 2050, a fractional `now`, a recovery
    /// lifetime and a CA whose end cuts the certificate short.
    @Test func deviceCertificatesMatchTheBuilder() throws {
        let key = P256.Signing.PrivateKey()
        let attestation = DiceTcbInfo(
            vendor: "Rampart", model: "rampartd", version: "2.1.0-rc.1", securityVersion: 300, layer: 1,
            fwids: [Array(repeating: 0xab, count: 32), Array(repeating: 0x01, count: 32)])
        let cases: [(now: Date, lifetime: TimeInterval?)] = [
            (Self.now, nil),
            (Date(timeIntervalSince1970: 1_709_164_800.4), nil),  // 2024-02-29T00:00:00.4Z
            (Date(timeIntervalSince1970: 2_524_607_999.6), nil),  // 2049-12-31T23:59:59.6Z: ends in 2050
            (Date(timeIntervalSince1970: 2_556_143_999), 3600),  // 2050-12-31T23:59:59Z, recovery
            (Date(timeIntervalSince1970: 951_782_400), nil),  // 2000-02-29
        ]
        for (now, lifetime) in cases {
            let root = try CertificateAuthority.makeRoot(commonName: "Root", now: now)
            let tenant = try root.issueSubordinate(
                commonName: "Tenant", organizationalUnit: "t-1", lifetime: .tenantCA, maxPathLength: 0, now: now)
            // A CA that ends in 10 hours: the device certificate may not outlive it.
            let ending = try CertificateAuthority(
                certificate: try Certificate(
                    version: .v3, serialNumber: .init(), publicKey: root.certificate.publicKey,
                    notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(36_000),
                    issuer: root.certificate.subject, subject: root.certificate.subject,
                    extensions: root.certificate.extensions, issuerPrivateKey: root.privateKey),
                privateKey: try P256.Signing.PrivateKey(pemRepresentation: root.privateKeyPEM))
            for authority in [root, tenant, ending] {
                let issued = try authority.issueDeviceCertificate(
                    deviceID: String(repeating: "c0", count: 64), publicKey: .init(key.publicKey), attestation: attestation,
                    now: now, lifetime: lifetime)
                let parsed = try issued.certificate
                let expectedEnd = min(now.addingTimeInterval(lifetime ?? 86_400), authority.certificate.notValidAfter)
                let reference = try Certificate(
                    version: .v3, serialNumber: parsed.serialNumber, publicKey: .init(key.publicKey),
                    notValidBefore: now.addingTimeInterval(-Lifetime.clockSkew), notValidAfter: expectedEnd,
                    issuer: authority.certificate.subject,
                    subject: try DistinguishedName {
                        OrganizationName("Rampart device")
                        CommonName(String(repeating: "c0", count: 64))
                    },
                    extensions: try Certificate.Extensions {
                        Critical(BasicConstraints.notCertificateAuthority)
                        Critical(KeyUsage(digitalSignature: true))
                        try ExtendedKeyUsage([.clientAuth])
                        SubjectKeyIdentifier(keyIdentifier: ArraySlice(SHA256.hash(data: key.publicKey.x963Representation).prefix(20)))
                        AuthorityKeyIdentifier(keyIdentifier: try #require(try authority.certificate.extensions.subjectKeyIdentifier).keyIdentifier)
                        try attestation.certificateExtension()
                    },
                    issuerPrivateKey: authority.privateKey)
                #expect(parsed.tbsCertificateBytes == reference.tbsCertificateBytes, "\(now) from \(authority.certificate.subject)")
                #expect(parsed.signatureAlgorithm == reference.signatureAlgorithm)
                #expect(parsed.isIssued(by: authority.certificate))
                #expect(issued.notValidAfter == parsed.notValidAfter)
                #expect(issued.serialHex == parsed.serialNumber.bytes.hexString)
                #expect(try Certificate(pemEncoded: issued.pemString) == parsed)
            }
        }
    }

    /// Our ECDSA DER both ways agrees with swift-crypto's: the encoder on every signature,
    /// the strict reader wherever it takes the bytes at all, across every one-byte edit.
    @Test func ecdsaSignatureDERAgreesWithSwiftCrypto() throws {
        let key = P256.Signing.PrivateKey()
        var raws = (0..<300).map { _ in Array(try! key.signature(for: Data([1, 2, 3])).rawRepresentation) }
        // Leading zero bytes, a set top bit, both halves short, a zero half.
        let high = [UInt8](repeating: 0x80, count: 32)
        let short = [UInt8](repeating: 0, count: 31) + [0x05]
        let zeroLed = [0x00, 0x00, 0x7f] + [UInt8](repeating: 0x11, count: 29)
        raws += [high + short, short + high, zeroLed + zeroLed, [UInt8](repeating: 0, count: 32) + high]
        for raw in raws {
            let reference = Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
            #expect(ECDSASignatureDER.encode(raw: raw) == reference)
            #expect(ECDSASignatureDER.raw(der: reference) == raw)
        }
        var taken = 0
        for der in raws.prefix(3).map({ Array(try! P256.Signing.ECDSASignature(rawRepresentation: $0).derRepresentation) }) {
            let edits = oneByteEdits(of: der, replacements: [0x00, 0x01, 0x02, 0x1f, 0x20, 0x21, 0x30, 0x7f, 0x80, 0x81, 0xff])
                + [[], der + [0], [0x30, 0x81, UInt8(der.count - 2)] + der.dropFirst(2)]
            for edited in edits {
                guard let ours = ECDSASignatureDER.raw(der: edited) else { continue }
                taken += 1
                let theirs = try? P256.Signing.ECDSASignature(derRepresentation: edited)
                #expect(theirs.map { Array($0.rawRepresentation) } == ours, "\(edited.hexString)")
            }
        }
        #expect(taken > 100)
    }

    /// The DiceTcbInfo extension written by hand is swift-asn1's, byte for byte.
    @Test func diceTcbInfoDERMatchesSwiftASN1() throws {
        let long = String(repeating: "v", count: 300)
        let digests: [[UInt8]] = [Array(repeating: 0xab, count: 32), Array(repeating: 0x00, count: 32)]
        let cases = [
            DiceTcbInfo(vendor: "Rampart", model: "rampartd", version: "1.0.0", securityVersion: 0, layer: 1, fwids: digests),
            DiceTcbInfo(vendor: "", model: "", version: long, securityVersion: 127, layer: 128, fwids: []),
            DiceTcbInfo(vendor: "é", model: "m", version: "2", securityVersion: 255, layer: 256, fwids: [digests[0]]),
            DiceTcbInfo(vendor: "a", model: "b", version: "c", securityVersion: Int.max, layer: -1, fwids: Array(repeating: digests[0], count: 5)),
            DiceTcbInfo(vendor: "a", model: "b", version: "c", securityVersion: Int.min, layer: -129, fwids: digests),
        ]
        for info in cases {
            var written: [UInt8] = []
            info.appendExtension(to: &written)
            #expect(written == (try DER.encoded(info.certificateExtension())), "\(info)")
        }
    }
}
