public import Foundation
public import RampartModel
public import X509

/// What a capability file grants one device. Only `development` exists: the device accepts
/// apps signed by the listed developer keys and opens its local debug socket.
public struct DeviceCapability: Codable, Sendable, Equatable {
    public static let development = "development"

    public var capability: String
    public var deviceId: DeviceID
    public var tenantId: TenantID
    public var issuedAt: Date
    public var expiresAt: Date
    /// SPKI PEM public keys (ECDSA P-256) whose signatures sideloaded apps may carry.
    public var developerKeys: [String]

    public init(deviceId: DeviceID, tenantId: TenantID, issuedAt: Date, expiresAt: Date, developerKeys: [String]) {
        self.capability = Self.development
        self.deviceId = deviceId
        self.tenantId = tenantId
        self.issuedAt = Date(timeIntervalSince1970: issuedAt.timeIntervalSince1970.rounded(.down))
        self.expiresAt = Date(timeIntervalSince1970: expiresAt.timeIntervalSince1970.rounded(.down))
        self.developerKeys = developerKeys
    }
}

/// A capability file: the capability's exact JSON bytes (base64) and the tenant's signature
/// over them — the same image-signing key and chain as the tenant's app images.
public struct CapabilityFile: Codable, Sendable, Equatable {
    /// Base64 of the capability's JSON.
    public var document: String
    public var signature: ImagePackageSignature

    /// Signs `capability` with the tenant's image-signing key.
    public static func sign(_ capability: DeviceCapability, privateKeyPEM: String, certificateChain: [String]) throws -> CapabilityFile {
        let encoder = JSONEncoder.rampart
        encoder.outputFormatting = [.sortedKeys]
        let bytes = try encoder.encode(capability)
        return CapabilityFile(
            document: bytes.base64EncodedString(),
            signature: try ImagePackageSignature.make(over: bytes, privateKeyPEM: privateKeyPEM, certificateChain: certificateChain))
    }

    /// The capability, once its signature leads to `root` through tenant `tenant`'s
    /// image-signing key, it names this `device` and tenant, and it has not expired.
    public func verify(root: Certificate, device: DeviceID, tenant: TenantID, now: Date) async throws -> DeviceCapability {
        guard let bytes = Data(base64Encoded: document),
            let capability = try? JSONDecoder.rampart.decode(DeviceCapability.self, from: bytes)
        else {
            throw ImagePackageError("capability_invalid", "the capability file's document cannot be read")
        }
        do {
            try await ImagePackageVerifier(root: root).verifyTenantSignature(bytes, signature, owner: tenant, at: capability.issuedAt)
        } catch let error as ImagePackageError {
            throw ImagePackageError("capability_signature_invalid", "the capability file is not signed by tenant \(tenant): \(error.message)")
        }
        guard capability.capability == DeviceCapability.development else {
            throw ImagePackageError("capability_invalid", "unknown capability '\(capability.capability.prefix(40))'")
        }
        guard capability.tenantId == tenant else {
            throw ImagePackageError("capability_foreign_tenant", "the capability is for tenant \(capability.tenantId), not \(tenant)")
        }
        guard capability.deviceId == device else {
            throw ImagePackageError("capability_foreign_device", "the capability is for device \(capability.deviceId), not this device (\(device))")
        }
        guard capability.issuedAt <= now.addingTimeInterval(ImagePackageVerifier.clockSkew) else {
            throw ImagePackageError("capability_invalid", "the capability says it was issued at \(capability.issuedAt), in the future")
        }
        guard now < capability.expiresAt else {
            throw ImagePackageError("capability_expired", "the capability expired at \(capability.expiresAt.formatted(.iso8601))")
        }
        return capability
    }
}
