import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
public import RampartDevice
import RampartModel
import Synchronization

/// HTTPS for the device's apps (`rampart_https_request`), after the runtime has checked the
/// manifest: the system's trust store plus any extra roots the device was given, TLS 1.2 or
/// later, no redirects (a redirect could lead outside `AllowedConnections`), a 1 MiB response
/// limit. With device authentication it presents the device's current attested certificate;
/// the key stays here.
public final class DeviceAppNetwork: AppNetwork {
    private let credential: Mutex<DeviceSession.Credential?>
    private let extraTrustRootsPEM: String?
    let timeout: TimeAmount = .seconds(30)
    static let responseLimit = 1 << 20

    public init(credential: DeviceSession.Credential? = nil, extraTrustRootsPEM: String? = nil) {
        self.credential = Mutex(credential)
        self.extraTrustRootsPEM = extraTrustRootsPEM
    }

    /// The credential renewed by attestation; requests from now on present it.
    public func update(_ credential: DeviceSession.Credential) { self.credential.withLock { $0 = credential } }

    public func send(_ request: AppHTTPSRequest) async throws -> AppHTTPSResponse {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let extraTrustRootsPEM {
            tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMBytes(Array(extraTrustRootsPEM.utf8)))]
        }
        if request.deviceAuthentication {
            guard let credential = credential.withLock({ $0 }) else {
                throw DeviceError(code: "not_attested", message: "the device has no certificate to present yet")
            }
            tls.certificateChain = try credential.result.certificateChain
                .flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }.map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(credential.clientKeyPEM.utf8), format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(10), read: timeout)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            var outgoing = HTTPClientRequest(url: request.url.absoluteString)
            outgoing.method = HTTPMethod(rawValue: request.method)
            if !request.body.isEmpty {
                outgoing.body = .bytes(ByteBuffer(bytes: request.body))
                outgoing.headers.add(name: "Content-Type", value: "application/octet-stream")
            }
            let response = try await client.execute(outgoing, timeout: timeout)
            let body = try await response.body.collect(upTo: Self.responseLimit)
            try await client.shutdown()
            return AppHTTPSResponse(status: Int(response.status.code), body: Array(buffer: body))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}
