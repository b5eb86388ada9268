public import Foundation
public import Logging
import NIOCore
public import RampartService
import ServiceLifecycle

/// The Security Service running inside this process on a free loopback port, over
/// SQLite in `dataDirectory`: what `rampart demo` shows, and what the CLI's tests talk to.
///
/// ```swift
/// try await LocalService.run(dataDirectory: dir, logger: logger) { local in
///     try await LoginCommand.login(server: local.url, token: local.bootstrapToken,
///                                  fingerprint: local.rootCAFingerprint, caFile: nil)
/// }
/// ```
public struct LocalService: Sendable {
    public let url: String
    public let rootCAFingerprint: String
    public let bootstrapToken: String
    public let dataDirectory: String
    /// The service's API, for in-process calls (benchmarks).
    public let api: API

    /// Starts the service, runs `body`, then shuts the service down gracefully.
    public static func run<T: Sendable>(
        dataDirectory: String, manufacturerCAPaths: [String] = [], tpmVendorCAPaths: [String] = [], logger: Logger,
        _ body: (LocalService) async throws -> T
    ) async throws -> T {
        var configuration = ServerConfiguration(dataDirectory: dataDirectory, port: 0, logLevel: logger.logLevel)
        configuration.manufacturerCAPaths = manufacturerCAPaths
        configuration.tpmVendorCAPaths = tpmVendorCAPaths
        return try await SecurityService.withDatabase(configuration, logger: logger) { database in
            try await serve(configuration, database: database, logger: logger, body)
        }
    }

    private static func serve<T: Sendable>(
        _ configuration: ServerConfiguration, database: any Database, logger: Logger,
        _ body: (LocalService) async throws -> T
    ) async throws -> T {
        let service = try await SecurityService.prepare(configuration, database: database, logger: logger)
        guard let bootstrapToken = service.bootstrapToken else {
            throw CLIError("\(configuration.dataDirectory) holds a service that was started before; use a new directory")
        }
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let app = try service.makeApplication { channel in
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        }
        let serviceGroup = ServiceGroup(services: [app], logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw CLIError("the service did not start listening") }
            let local = LocalService(
                url: "https://127.0.0.1:\(port)", rootCAFingerprint: service.rootCAFingerprint,
                bootstrapToken: bootstrapToken, dataDirectory: configuration.dataDirectory, api: service.api)
            do {
                let result = try await body(local)
                await serviceGroup.triggerGracefulShutdown()
                return result
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                throw error
            }
        }
    }
}
