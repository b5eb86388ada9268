import Crypto
import Foundation
import RampartDevice
import RampartModel
import RampartPKI
import RampartTestSupport
import Testing
import X509

@Suite struct SoftwareDICETests {
    static var runtimeV1: [UInt8] { Array(SHA256.hash(data: Data("rampartd 1.0".utf8))) }
    static var runtimeV2: [UInt8] { Array(SHA256.hash(data: Data("rampartd 1.1".utf8))) }

    func secret(_ byte: UInt8) throws -> UniqueDeviceSecret { try UniqueDeviceSecret(bytes: Array(repeating: byte, count: 32)) }

    @Test func deviceIDIsStableAcrossUpdatesButAliasIsNot() throws {
        let dice = SoftwareDICE(uds: try secret(1))
        let again = SoftwareDICE(uds: try secret(1))
        #expect(dice.deviceID == again.deviceID)
        #expect(dice.deviceIDKey.publicKey.rawRepresentation == again.deviceIDKey.publicKey.rawRepresentation)
        #expect(SoftwareDICE(uds: try secret(2)).deviceID != dice.deviceID)

        let alias1 = dice.aliasKey(measurement: Self.runtimeV1).publicKey.rawRepresentation
        #expect(alias1 == again.aliasKey(measurement: Self.runtimeV1).publicKey.rawRepresentation)
        #expect(alias1 != dice.aliasKey(measurement: Self.runtimeV2).publicKey.rawRepresentation)
        #expect(alias1 != dice.deviceIDKey.publicKey.rawRepresentation)
    }

    /// As a DICE layer at boot, the processor makes one Alias certificate per launch: every
    /// evidence of the launch shows the same one, a new launch gets a new one, and it does
    /// not expire while the launch lasts.
    @Test func oneAliasCertificatePerLaunch() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let processor = DICESecurityProcessor(uds: try secret(5), countersPath: "\(directory)/counters.json")
        func launch() async throws {
            try await processor.beginLaunch()
            try await processor.extend(Self.runtimeV1)
        }
        func sign(_ text: String) async throws -> SignedEvidence {
            try await processor.sign(payload: Data(text.utf8), softwareVersion: "1.0.0", securityVersion: 1, now: Date())
        }
        try await launch()
        let first = try await sign("one")
        let second = try await sign("two")
        #expect(first.certificateChain == second.certificateChain)
        #expect(first.signature != second.signature)
        let aliasPEM = try #require(first.certificateChain.first)
        let alias = try #require(try certificates(fromPEMBundle: aliasPEM).first)
        #expect(alias.notValidAfter == Date(timeIntervalSince1970: 253_402_300_799))
        #expect(
            P256.Signing.PublicKey(alias.publicKey)!.isValidSignature(
                try P256.Signing.ECDSASignature(derRepresentation: second.signature), for: Data("two".utf8)))

        try await launch()
        #expect(try await sign("three").certificateChain != first.certificateChain)
    }

    @Test func secretFileIsPrivateAndNeverReplaced() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/uds"
        let made = try UniqueDeviceSecret.provision(at: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(SoftwareDICE(uds: try UniqueDeviceSecret.load(from: path)).deviceID == SoftwareDICE(uds: made).deviceID)
        #expect(throws: DeviceError.self) { _ = try UniqueDeviceSecret.provision(at: path) }
        try "abcd\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: DeviceError.self) { _ = try UniqueDeviceSecret.load(from: path) }
        #expect(throws: DeviceError.self) { _ = try UniqueDeviceSecret.load(from: "\(directory)/missing") }
    }

    /// The chain manufacturer CA → DeviceID → Alias is checked by OpenSSL, and the device
    /// ID is what OpenSSL computes from the DeviceID certificate's public key.
    @Test func manufacturerEndorsedChainVerifiesWithOpenSSL() async throws {
        let now = Date()
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Contoso Manufacturing CA", now: now)
        let dice = SoftwareDICE(uds: try secret(3))
        let deviceCertificate = try dice.deviceIDCertificate(endorsedBy: manufacturer, now: now)
        let alias = try dice.aliasCertificate(measurement: Self.runtimeV1, version: "1.0.0", securityVersion: 3, now: now)

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/ca.pem", atomically: true, encoding: .utf8)
        try deviceCertificate.pemString.write(toFile: "\(directory)/deviceid.pem", atomically: true, encoding: .utf8)
        try alias.pemString.write(toFile: "\(directory)/alias.pem", atomically: true, encoding: .utf8)
        let verified = try await Command.run(
            "/usr/bin/openssl",
            ["verify", "-CAfile", "\(directory)/ca.pem", "-untrusted", "\(directory)/deviceid.pem", "\(directory)/alias.pem"])
        #expect(verified.status == 0, "\(verified.output)")

        // Another manufacturer's CA does not vouch for it.
        let stranger = try CertificateAuthority.makeRoot(commonName: "Someone Else", now: now)
        try stranger.certificate.pemString.write(toFile: "\(directory)/stranger.pem", atomically: true, encoding: .utf8)
        let refused = try await Command.run(
            "/usr/bin/openssl", ["verify", "-CAfile", "\(directory)/stranger.pem", "\(directory)/deviceid.pem"])
        #expect(refused.status != 0)

        let spki = try await Command.run(
            "/bin/sh",
            ["-c", "openssl x509 -in \(directory)/deviceid.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum"])
        #expect(spki.output.hasPrefix(dice.deviceID.hex))

        let text = try await Command.run("/usr/bin/openssl", ["x509", "-in", "\(directory)/alias.pem", "-noout", "-text"])
        #expect(text.output.contains("2.23.133.5.4.1"))
    }

    @Test func tcbInfoCarriesTheMeasurement() throws {
        let dice = SoftwareDICE(uds: try secret(4))
        let alias = try dice.aliasCertificate(measurement: Self.runtimeV2, version: "1.1.0", securityVersion: 7, now: Date())
        let ext = try #require(alias.extensions.first { $0.oid == DiceTcbInfo.oid })
        let info = try DiceTcbInfo(ext)
        #expect(info.fwids == [Self.runtimeV2])
        #expect(info.version == "1.1.0")
        #expect(info.securityVersion == 7)
        #expect(info.layer == 1)
        #expect(info.model == "rampartd")
        #expect(alias.publicKey == Certificate.PublicKey(dice.aliasKey(measurement: Self.runtimeV2).publicKey))
    }
}
