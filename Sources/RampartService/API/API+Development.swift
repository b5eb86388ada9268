import Crypto
import Foundation
import Hummingbird
import RampartImage
import RampartModel

extension API {
    /// Development mode: an Administrator has the service issue a capability file for one
    /// device of the tenant, signed with the tenant's image-signing key. Installed on that
    /// device it lets the runtime accept apps signed by the listed developer keys and open
    /// its local debug socket. The file is the only grant; the service keeps an audit entry.
    var developmentEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants/{tenantId}/devices/{deviceId}/development-capability", action: "device.enable-development") {
                request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .administrator)
                let device = try context.deviceID()
                let body = try await request.decodeBody(EnableDevelopmentRequest.self)
                guard (1...10).contains(body.developerKeys.count) else {
                    throw ServiceError(400, "developer_keys_invalid", "name 1 to 10 developer keys")
                }
                let keys = try body.developerKeys.map { pem in
                    guard let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
                        throw ServiceError(400, "developer_keys_invalid", "each developer key must be an ECDSA P-256 public key in PEM")
                    }
                    return key.pemRepresentation
                }
                let days = body.validDays ?? 30
                guard (1...365).contains(days) else {
                    throw ServiceError(400, "valid_days_invalid", "validDays must be between 1 and 365")
                }
                let now = now()
                let file = try await database.transaction { db in
                    guard try await db.device(device, in: tenant) != nil else { throw ServiceError.notFound("device", device.description) }
                    let signing = try await pki.signingKey(.imageSigning, tenant: tenant, db: db, now: now)
                    let capability = DeviceCapability(
                        deviceId: device, tenantId: tenant, issuedAt: now, expiresAt: now.addingTimeInterval(Double(days) * 86_400),
                        developerKeys: keys)
                    let file = try CapabilityFile.sign(capability, privateKeyPEM: signing.privateKeyPEM, certificateChain: signing.certificateChain)
                    try await db.audit(context, target: "device/\(device)", at: now)
                    return file
                }
                return try .json(file, status: .created)
            }
        ]
    }
}
