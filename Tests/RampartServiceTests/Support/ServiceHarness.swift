import Foundation
import RampartTestSupport
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RampartImage
import RampartModel
@testable import RampartService
import ServiceLifecycle
import Synchronization
import X509
import RampartPKI

/// A clock tests can move, so expiry and rotation are tested without waiting.
final class TestClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date = Date()) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func advance(days: Double) { current.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }
}

/// A prepared Security Service over a real database of the given engine, with the
/// bootstrap operator token at hand.
struct ServiceHarness: Sendable {
    let service: SecurityService
    let database: any Database
    let operatorToken: String
    let clock: TestClock
    let dataDirectory: String
    /// The manufacturer CA the service trusts; ``device()`` provisions devices with it.
    let manufacturer: CertificateAuthority

    /// A freshly provisioned, genuine software-DICE device (not claimed).
    func device() async throws -> TestDevice { try await TestDevice.make(manufacturer: manufacturer) }

    /// A claim of a fresh genuine device, into `group` when given.
    func claim(group: DeviceGroupID? = nil) async throws -> ClaimDeviceRequest {
        ClaimDeviceRequest(record: try await device().record, deviceGroupId: group)
    }

    var api: API { service.api }

    /// Runs `body` against a fresh service: SQLite in a temporary directory, or a
    /// PostgreSQL cluster started for this test and stopped after it.
    static func with<T: Sendable>(
        _ engine: DatabaseEngine, clock: TestClock = TestClock(), tpmVendors: [String] = [],
        _ body: (ServiceHarness) async throws -> T
    ) async throws -> T {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manufacturer = try CertificateAuthority.makeRoot(commonName: "Test Manufacturing CA", now: Date())
        try manufacturer.certificate.pemString.write(toFile: "\(directory)/manufacturer.pem", atomically: true, encoding: .utf8)
        let manufacturerCAPaths = ["\(directory)/manufacturer.pem"]
        switch engine {
        case .sqlite:
            var configuration = ServerConfiguration(dataDirectory: directory, port: 0)
            configuration.manufacturerCAPaths = manufacturerCAPaths
            configuration.tpmVendorCAPaths = tpmVendors
            return try await SecurityService.withDatabase(configuration, logger: logger) { database in
                try await run(configuration, database: database, clock: clock, manufacturer: manufacturer, body)
            }
        case .postgres:
            return try await PostgresTestServer.with { url in
                var configuration = ServerConfiguration(
                    dataDirectory: directory, port: 0, databaseURL: url, keyEncryptionKey: String(repeating: "ab", count: 32))
                configuration.manufacturerCAPaths = manufacturerCAPaths
                configuration.tpmVendorCAPaths = tpmVendors
                return try await SecurityService.withDatabase(configuration, logger: logger) { database in
                    try await run(configuration, database: database, clock: clock, manufacturer: manufacturer, body)
                }
            }
        }
    }

    private static func run<T: Sendable>(
        _ configuration: ServerConfiguration, database: any Database, clock: TestClock,
        manufacturer: CertificateAuthority, _ body: (ServiceHarness) async throws -> T
    ) async throws -> T {
        let service = try await SecurityService.prepare(
            configuration, database: database, logger: logger, now: { clock.now })
        guard let token = service.bootstrapToken else { throw HarnessError("no bootstrap token on first start") }
        return try await body(
            ServiceHarness(
                service: service, database: database, operatorToken: token, clock: clock,
                dataDirectory: configuration.dataDirectory, manufacturer: manufacturer))
    }

    /// Runs `body` with an in-process client of the router (no sockets, no TLS).
    func test<T: Sendable>(_ body: @escaping @Sendable (RouterClient) async throws -> T) async throws -> T {
        let app = Application(router: service.makeRouter())
        return try await app.test(.router) { client in try await body(RouterClient(client: client)) }
    }

    static let logger: Logger = {
        var logger = Logger(label: "rampart-test")
        logger.logLevel = .critical
        return logger
    }()

    static func temporaryDirectory() throws -> String {
        try RampartTestSupport.temporaryDirectory()
    }
}

/// What a call answered: status, body, and the body decoded where asked.
struct Answer: Sendable {
    let status: HTTPResponse.Status
    let body: Data

    var error: APIErrorBody? { try? JSONDecoder.rampart.decode(APIErrorBody.self, from: body) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder.rampart.decode(T.self, from: body) }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A thin client over HummingbirdTesting's router client speaking the API's JSON.
struct RouterClient: Sendable {
    let client: any TestClientProtocol

    func call(_ method: HTTPRequest.Method, _ path: String, token: String?, raw: String? = nil) async throws -> Answer {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        if raw != nil { headers[.contentType] = "application/json" }
        let response = try await client.executeRequest(
            uri: path, method: method, headers: headers, body: raw.map { ByteBuffer(string: $0) })
        return Answer(status: response.status, body: Data(response.body.readableBytesView))
    }

    func call(_ method: HTTPRequest.Method, _ path: String, token: String?, json: some Encodable) async throws -> Answer {
        let text = String(decoding: try JSONEncoder.rampart.encode(json), as: UTF8.self)
        return try await call(method, path, token: token, raw: text)
    }

    /// Sends `bytes` as the body, as an upload of a file.
    func upload(_ path: String, token: String?, bytes: Data, contentType: String = "application/zip") async throws -> Answer {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        headers[.contentType] = contentType
        let response = try await client.executeRequest(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: bytes))
        return Answer(status: response.status, body: Data(response.body.readableBytesView))
    }

    /// Packs the test app at `version` and adds it to `tenant`.
    func addImage(version: String, tenant: TenantID, token: String) async throws -> Answer {
        let package = try ImagePackage.app(
            manifest: TestApp.manifest, wasm: Wasm.command, version: version, securityVersion: 1)
        return try await upload("/v1/tenants/\(tenant)/images", token: token, bytes: try package.zipped())
    }

    /// A tenant with its Administrator's token.
    func createTenant(_ name: String, operatorToken: String) async throws -> TenantCreated {
        let answer = try await call(.post, "/v1/tenants", token: operatorToken, json: CreateTenantRequest(name: name))
        guard answer.status == .created else { throw HarnessError("tenant create answered \(answer.status): \(answer.text)") }
        return try answer.decode(TenantCreated.self)
    }

    /// A user of `tenant` with `role`, and a token acting as them.
    func user(_ name: String, _ role: Role, tenant: TenantID, adminToken: String) async throws -> String {
        let added = try await call(
            .post, "/v1/tenants/\(tenant)/roles", token: adminToken, json: AssignRoleRequest(user: name, role: role))
        guard added.status == .ok else { throw HarnessError("role add answered \(added.status): \(added.text)") }
        let issued = try await call(
            .post, "/v1/tenants/\(tenant)/tokens", token: adminToken, json: CreateTokenRequest(user: name))
        guard issued.status == .created else { throw HarnessError("token create answered \(issued.status): \(issued.text)") }
        return try issued.decode(IssuedToken.self).secret
    }

    func createProduct(_ name: String, tenant: TenantID, token: String) async throws -> ProductDocument {
        let answer = try await call(.post, "/v1/tenants/\(tenant)/products", token: token, json: CreateProductRequest(name: name))
        guard answer.status == .created else { throw HarnessError("product create answered \(answer.status): \(answer.text)") }
        return try answer.decode(ProductDocument.self)
    }

    func groups(of product: ProductID, tenant: TenantID, token: String) async throws -> [DeviceGroupDocument] {
        try await call(.get, "/v1/tenants/\(tenant)/device-groups?productId=\(product)", token: token)
            .decode(ListDocument<DeviceGroupDocument>.self).items
    }
}

/// Both engines, for parameterised tests.
let engines: [DatabaseEngine] = [.sqlite, .postgres]

/// The app the service tests add as an image: one component, any version.
enum TestApp {
    static let componentId = ComponentID("7d3c1a52-5b0e-4c53-9d8e-0c5f4ad1b2e7")!
    static let manifest = Data(
        """
        {"SchemaVersion": 1, "Name": "telemetry", "ComponentId": "\(componentId)", "EntryPoint": "app.wasm",
         "Capabilities": {}, "Limits": {"MemoryKB": 256}}
        """.utf8)
}
