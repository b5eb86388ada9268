import Crypto
import Foundation
import NIOSSL
import HummingbirdTLS
import NIOCore
import SwiftASN1
import RampartPKI
import RampartModel
import X509

/// The HTTPS identity of the service: the operator's certificate, or one the service
/// issues itself from its Intermediate CA (and renews 30 days before it expires).
struct ServerTLS {
    let configuration: TLSConfiguration
    /// SHA-256 of the leaf certificate, for people to compare.
    let certificateFingerprint: String
    let generated: Bool

    static func make(configuration: ServerConfiguration, pki: ServicePKI, now: Date) throws -> ServerTLS {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let leafFingerprint: String
        var generated = false
        if let certPath = configuration.tlsCertificatePath {
            guard let keyPath = configuration.tlsKeyPath else {
                throw ConfigurationError("--tls-cert needs --tls-key")
            }
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certPath)
                key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            } catch {
                throw ConfigurationError("cannot read the TLS certificate or key (\(certPath), \(keyPath)): \(error)")
            }
            guard let leaf = chain.first else { throw ConfigurationError("\(certPath) holds no certificate") }
            leafFingerprint = SHA256.hash(data: try leaf.toDERBytes()).hexString
        } else {
            let (certificatePEM, keyPEM, fingerprint, fresh) = try generatedIdentity(
                configuration: configuration, pki: pki, now: now)
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            leafFingerprint = fingerprint
            generated = fresh
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv13
        // People authenticate with tokens and send no certificate; devices present the
        // client certificate attestation gave them, which must chain to our root
        // (checked by ``deviceChainVerifier(intermediate:)``).
        tls.certificateVerification = .optionalVerification
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: pki.root.certificate.derBytes, format: .der)])
        return ServerTLS(configuration: tls, certificateFingerprint: leafFingerprint, generated: generated)
    }

    /// Reads `tls/server.pem` and `tls/server.key` from the data directory, issuing them
    /// when absent, expiring within 30 days, or not naming the configured hostnames.
    private static func generatedIdentity(
        configuration: ServerConfiguration, pki: ServicePKI, now: Date
    ) throws -> (String, String, String, Bool) {
        let directory = "\(configuration.dataDirectory)/tls"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certPath = "\(directory)/server.pem"
        let keyPath = "\(directory)/server.key"
        let hostnames = ["localhost"] + configuration.hostnames.filter { $0 != "localhost" }
        if let certificatePEM = try? String(contentsOfFile: certPath, encoding: .utf8),
            let keyPEM = try? String(contentsOfFile: keyPath, encoding: .utf8),
            let leaf = try? certificates(fromPEMBundle: certificatePEM).first,
            leaf.notValidAfter.timeIntervalSince(now) > 30 * 86_400,
            leaf.issuer == pki.intermediate.certificate.subject,
            Set(dnsNames(of: leaf)) == Set(hostnames)
        {
            return (certificatePEM, keyPEM, leaf.sha256Fingerprint, false)
        }
        let key = P256.Signing.PrivateKey()
        let leaf = try pki.intermediate.issueServerCertificate(
            hostnames: hostnames, ipAddresses: [[127, 0, 0, 1], Array(repeating: 0, count: 15) + [1]],
            publicKey: key.publicKey, now: now)
        let chainPEM = leaf.pemString + pki.intermediate.certificate.pemString
        try SecretFile.write(key.pemRepresentation, to: keyPath)
        try chainPEM.write(toFile: certPath, atomically: true, encoding: .utf8)
        try pki.root.certificate.pemString.write(toFile: "\(directory)/ca.pem", atomically: true, encoding: .utf8)
        return (chainPEM, key.pemRepresentation, leaf.sha256Fingerprint, true)
    }

    private static func dnsNames(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            if case .dnsName(let dns) = name { return dns }
            return nil
        }
    }

    /// The client-certificate check during the handshake: the chain must be a device
    /// certificate signed by a tenant CA that our intermediate signed. Validity dates are
    /// left to ``DeviceAuthenticator``, so an expired certificate is refused with its own
    /// code (`certificate_expired`) and counted, instead of ending in a bare TLS alert;
    /// which tenant CA, and whether it is still that device's tenant, is decided there too.
    /// The handshake itself still proves the client holds the certificate's key.
    static func deviceChainVerifier(intermediate: Certificate) -> TLSChannelConfiguration.CustomVerificationCallback {
        { chain, promise in
            let verified: Bool
            if chain.count >= 2, let leaf = try? Certificate(derEncoded: chain[0].toDERBytes()),
                let tenantCA = try? Certificate(derEncoded: chain[1].toDERBytes())
            {
                verified =
                    !leaf.isCertificateAuthority && tenantCA.isIssued(by: intermediate)
                    && (try? tenantCA.extensions.basicConstraints) == .isCertificateAuthority(maxPathLength: 0)
                    && leaf.isIssued(by: tenantCA)
            } else {
                verified = false
            }
            promise.succeed(verified ? .certificateVerified : .failed)
        }
    }
}
