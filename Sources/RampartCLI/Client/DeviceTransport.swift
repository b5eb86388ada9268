public import Foundation
import NIOHTTP1
public import RampartDevice
public import RampartModel

/// The update agent's way to the service: the device's routes over mutual TLS, with its
/// attested credential.
public struct DeviceTransport: UpdateTransport {
    let server: String
    let rootPEM: String
    let credential: DeviceSession.Credential
    let timeout: Duration

    public init(server: String, rootPEM: String, credential: DeviceSession.Credential, timeout: Duration = .seconds(60)) {
        self.server = server
        self.rootPEM = rootPEM
        self.credential = credential
        self.timeout = timeout
    }

    func client<T: Sendable>(_ body: (APIClient) async throws -> T) async throws -> T {
        try await APIClient.with(server: server, token: nil, trustRootPEM: rootPEM, timeout: timeout, credential: credential, body)
    }

    public func updateCheck() async throws -> UpdateCheckResponse { try await client { try await $0.updateCheck() } }

    public func fetch(_ path: String, offset: Int, limit: Int) async throws -> Data? {
        do {
            return try await client { client in
                try await client.send(.GET, path, body: nil, headers: offset > 0 ? [("Range", "bytes=\(offset)-")] : [], limit: limit).1
            }
        } catch let failure as APIFailure where failure.status == 404 {
            return nil
        }
    }

    public func report(_ report: DeviceUpdateReport) async throws { try await client { try await $0.reportUpdateState(report) } }
}

extension DeviceTransport: ReportTransport {
    public func upload(_ batch: FailureReportBatch) async throws -> FailureReportReceipt {
        try await client { try await $0.post("/v1/device/reports", batch) }
    }
}
