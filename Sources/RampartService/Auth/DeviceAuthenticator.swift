import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import RampartModel
import RampartPKI
import SwiftASN1
import X509

/// Maps a mutual-TLS client certificate to a device principal.
///
/// TLS has already checked that the certificate chains to the service's intermediate
/// through a tenant CA (``ServerTLS/deviceChainVerifier(intermediate:)``). Here: it must be
/// within its validity period (`certificate_expired`), be a device certificate (clientAuth, CN = device
/// ID) issued by a CA of the tenant that holds the device *now*, so a certificate issued
/// before the device was released and claimed elsewhere is refused
/// (`certificate_foreign_tenant`).
struct DeviceAuthenticator: RouterMiddleware {
    typealias Context = RampartRequestContext
    let api: API

    func handle(
        _ request: Request, context: RampartRequestContext,
        next: (Request, RampartRequestContext) async throws -> Response
    ) async throws -> Response {
        guard context.principal == nil,
            let peer = try? await context.channel.nioSSL_peerCertificate().get(),
            let certificate = try? Certificate(derEncoded: try peer.toDERBytes())
        else { return try await next(request, context) }
        guard try certificate.extensions.extendedKeyUsage?.contains(.clientAuth) == true,
            let commonName = certificate.subject.commonName, let device = DeviceID(commonName)
        else {
            throw ServiceError(403, "certificate_not_a_device", "the client certificate is not a Rampart device certificate")
        }
        let now = api.now()
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            throw ServiceError(
                401, "certificate_expired",
                "this device certificate is valid from \(certificate.notValidBefore) to \(certificate.notValidAfter); attest again")
        }
        let (tenant, issued) = try await api.database.read { db -> (TenantID?, (revoked: Bool, recovery: Bool)?) in
            guard let tenant = try await db.owner(of: device) else { return (nil, nil) }
            let issuers = try await api.pki.tenantCAs(tenant, db: db, now: now).map(\.0)
            guard issuers.contains(where: { certificate.isIssued(by: $0) }) else { return (nil, nil) }
            return (tenant, try await db.issuedCertificate(serial: certificate.serialHex, device: device))
        }
        guard let tenant else {
            throw ServiceError(
                403, "certificate_foreign_tenant",
                "this certificate was not issued by the CA of the tenant that holds device \(device) now; attest again")
        }
        guard let issued else {
            throw ServiceError(403, "certificate_unknown", "this service has no record of issuing this certificate to \(device)")
        }
        if issued.recovery {
            // Issued to software the service does not trust, so that it can fetch a fix: nothing more.
            guard API.recoveryAllows(request.uri.path) else {
                throw ServiceError(
                    403, "recovery_only", "a recovery certificate opens only the update routes; install the update and attest again")
            }
        } else if issued.revoked {
            throw ServiceError(
                403, "software_revoked",
                "this certificate was issued for system software that has since been revoked; the device must update and attest again")
        }
        var context = context
        context.principal = .device(device, tenant: tenant)
        context.logger[metadataKey: "device.id"] = .string(device.hex)
        return try await next(request, context)
    }
}
