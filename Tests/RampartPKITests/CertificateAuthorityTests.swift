import Crypto
import Foundation
import RampartPKI
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

    /// Rampart's PEM encoder writes what swift-asn1's does, for every length around the
    /// 48-byte line boundary, and a certificate reads back from it.
    @Test func pemEncodingMatchesSwiftASN1() throws {
        for length in 0..<200 {
            let der = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(PEM.encode(der, label: "CERTIFICATE") == PEMDocument(type: "CERTIFICATE", derBytes: der).pemString + "\n")
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
            let serial = Array(leaf.serialNumber.bytes)
            #expect(serial.count == 20)
            #expect(serial[0] < 0x80 && serial[0] != 0)
            seen.insert(serial)
        }
        #expect(seen.count == 64)
    }
}
