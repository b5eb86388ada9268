import Foundation
import Hummingbird
import Logging
import RampartImage
import RampartModel
import X509

/// The Security Service's HTTP API: its dependencies and its routes.
///
/// Handlers live in extensions by domain (`API+Tenants.swift`, `API+Devices.swift`, …);
/// ``endpoints`` lists every route once.
public struct API: Sendable {
    let database: any Database
    let pki: ServicePKI
    /// Which devices are genuine: the manufacturer and TPM vendor CAs.
    let genuineness: Genuineness
    let now: @Sendable () -> Date
    let logger: Logger
    /// The most an uploaded image package may hold.
    var imageLimits = ImagePackage.Limits()
    /// How long failure reports are kept (`--error-retention-days`, 14 by default).
    var errorRetention: TimeInterval = 14 * 86_400
    /// Identity and Alias certificates attestation has already parsed and verified.
    let attestationCache = AttestationCache()
    /// Issues and checks challenge nonces.
    let nonces: AttestationNonces

    /// Every route the service serves.
    public var endpoints: [Endpoint] {
        publicEndpoints + tenantEndpoints + userEndpoints + fleetEndpoints + caEndpoints + imageEndpoints + developmentEndpoints + deploymentEndpoints + updateRepositoryEndpoints + releaseEndpoints + attestationEndpoints + mutualTLSEndpoints + errorEndpoints
    }

    /// Registers ``endpoints`` on `router`, recording a failed mutating call in the audit
    /// log (the successful ones are recorded inside their own transaction).
    func register(on router: Router<RampartRequestContext>) {
        for endpoint in endpoints {
            router.on(RouterPath(endpoint.path), method: endpoint.method) { request, context in
                var context = context
                context.auditAction = endpoint.action
                do {
                    return try await endpoint.handler(request, context)
                } catch {
                    if let action = endpoint.action, let principal = context.principal {
                        let outcome = (error as? ServiceError)?.code ?? ServiceError.internalError.code
                        do {
                            try await database.transaction { db in
                                try await db.appendAudit(
                                    tenant: principal.tenantID, actor: principal.actorName, action: action,
                                    target: request.uri.path, outcome: outcome, at: now())
                            }
                        } catch {
                            context.logger.error("audit entry for a refused call was lost", metadata: ["error": "\(error)"])
                        }
                    }
                    throw error
                }
            }
        }
    }
}
