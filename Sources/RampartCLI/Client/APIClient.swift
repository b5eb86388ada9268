public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
public import RampartModel

/// An HTTPS client of the Security Service API, shared by the CLI commands and the demo.
///
/// ```swift
/// try await APIClient.with(server: url, token: token, trustRootPEM: pem) { client in
///     let me = try await client.whoAmI()
/// }
/// ```
public final class APIClient: Sendable {
    public let server: String
    let token: String?
    let http: HTTPClient
    /// How long one request may take, connecting included.
    let timeout: TimeAmount

    /// - Parameter trustRootPEM: the service's root CA; the system trust store when `nil`.
    /// - Parameter insecure: skips certificate verification; used only to fetch the root
    ///   certificate whose fingerprint the caller then checks.
    /// - Parameter timeout: the longest a request may take. A refused connection is retried
    ///   by the HTTP client until then, so devices that retry on their own pass less.
    /// - Parameter credential: a device's attested certificate and key, presented for
    ///   mutual TLS on the `/v1/device/…` routes.
    init(
        server: String, token: String?, trustRootPEM: String?, insecure: Bool = false, timeout: Duration = .seconds(60),
        credential: DeviceSession.Credential? = nil
    ) throws {
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.token = token
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if insecure {
            tls.certificateVerification = .none
        } else if let trustRootPEM {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(trustRootPEM.utf8)))
            } catch {
                throw CLIError("the stored root CA certificate is not valid PEM; log in again")
            }
        }
        if let credential {
            do {
                tls.certificateChain = try credential.result.certificateChain
                    .flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }.map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(credential.clientKeyPEM.utf8), format: .pem))
            } catch {
                throw CLIError("the device certificate or its key is not valid PEM; attest again")
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: min(.seconds(10), self.timeout), read: self.timeout)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Runs `body` with a client and always shuts it down.
    public static func with<T: Sendable>(
        server: String, token: String?, trustRootPEM: String?, insecure: Bool = false, timeout: Duration = .seconds(60),
        credential: DeviceSession.Credential? = nil, _ body: (APIClient) async throws -> T
    ) async throws -> T {
        let client = try APIClient(
            server: server, token: token, trustRootPEM: trustRootPEM, insecure: insecure, timeout: timeout, credential: credential)
        do {
            let result = try await body(client)
            try await client.http.shutdown()
            return result
        } catch {
            try? await client.http.shutdown()
            throw error
        }
    }

    /// Sends a request and returns the status and body. API errors become ``APIFailure``.
    func send(_ method: HTTPMethod, _ path: String, json body: (some Encodable)? = nil as String?) async throws -> (
        Int, Data
    ) {
        try await send(method, path, body: try body.map { ("application/json", try JSONEncoder.rampart.encode($0)) })
    }

    /// Sends a request with a body of the given content type (or none). A successful answer
    /// is read up to `limit` bytes (the rest is not read); a longer error body is an error.
    func send(
        _ method: HTTPMethod, _ path: String, body: (contentType: String, bytes: Data)?, headers: [(String, String)] = [],
        limit: Int? = nil
    ) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: body.contentType)
            request.body = .bytes(ByteBuffer(data: body.bytes))
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw CLIError("cannot reach \(server): \(Self.describe(error))")
        }
        if let limit, (200..<300).contains(Int(response.status.code)) {
            var data = Data()
            for try await chunk in response.body {
                data.append(contentsOf: chunk.readableBytesView.prefix(limit - data.count))
                if data.count >= limit { break }
            }
            return (Int(response.status.code), data)
        }
        let buffer = try await response.body.collect(upTo: 64 << 20)
        let data = Data(buffer.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            if let failure = try? JSONDecoder.rampart.decode(APIErrorBody.self, from: data) {
                throw APIFailure(status: Int(response.status.code), body: failure)
            }
            throw APIFailure(
                status: Int(response.status.code),
                body: APIErrorBody(error: "http_\(response.status.code)", message: "the server answered \(response.status)"))
        }
        return (Int(response.status.code), data)
    }

    func get<T: Decodable>(_ path: String, as type: T.Type = T.self) async throws -> T {
        try decode(T.self, from: try await send(.GET, path).1)
    }

    func post<T: Decodable>(_ path: String, _ body: some Encodable, as type: T.Type = T.self) async throws -> T {
        try decode(T.self, from: try await send(.POST, path, json: body).1)
    }

    func patch<T: Decodable>(_ path: String, _ body: some Encodable, as type: T.Type = T.self) async throws -> T {
        try decode(T.self, from: try await send(.PATCH, path, json: body).1)
    }

    func delete(_ path: String) async throws {
        _ = try await send(.DELETE, path)
    }

    func text(_ path: String) async throws -> String {
        String(decoding: try await send(.GET, path).1, as: UTF8.self)
    }

    private func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do {
            return try JSONDecoder.rampart.decode(T.self, from: data)
        } catch {
            throw CLIError("the server's answer could not be read (\(error)); is \(server) a Rampart service?")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let ssl = error as? NIOSSLError { return "TLS failed (\(ssl)); check the server's certificate or log in again" }
        if let nio = error as? HTTPClientError { return "\(nio)" }
        return "\(error)"
    }
}

/// An error answer of the API: status and the `{"error", "message"}` body.
public struct APIFailure: Error, CustomStringConvertible, Equatable {
    public let status: Int
    public let body: APIErrorBody
    public var description: String { "\(body.message) [\(body.error), HTTP \(status)]" }
}

/// A CLI failure said in one line.
public struct CLIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
