public import Foundation

// The JSON documents of the Security Service API. The service encodes them and the
// CLI decodes them, so both sides share one definition. Dates are ISO 8601 strings.

/// A tenant as the API shows it.
public struct TenantDocument: Codable, Sendable, Equatable {
    public var id: TenantID
    public var name: String
    public var createdAt: Date

    public init(id: TenantID, name: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
    }
}

/// The answer to creating a tenant: the tenant and the first Administrator's token,
/// which is shown only this once.
public struct TenantCreated: Codable, Sendable {
    public var tenant: TenantDocument
    public var administrator: UserDocument
    public var token: IssuedToken

    public init(tenant: TenantDocument, administrator: UserDocument, token: IssuedToken) {
        self.tenant = tenant
        self.administrator = administrator
        self.token = token
    }
}

/// A user of a tenant and the role it holds there.
public struct UserDocument: Codable, Sendable, Equatable {
    public var id: UserID
    public var tenantId: TenantID
    public var name: String
    public var role: Role
    public var createdAt: Date

    public init(id: UserID, tenantId: TenantID, name: String, role: Role, createdAt: Date) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.role = role
        self.createdAt = createdAt
    }
}

/// An API token's metadata. The secret is never part of it.
public struct TokenDocument: Codable, Sendable, Equatable {
    public var id: TokenID
    public var name: String
    /// The tenant the token acts in; `nil` for a service operator token.
    public var tenantId: TenantID?
    /// The user the token acts as; `nil` for a service operator token.
    public var user: String?
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(
        id: TokenID, name: String, tenantId: TenantID?, user: String?, createdAt: Date, expiresAt: Date,
        revokedAt: Date?
    ) {
        self.id = id
        self.name = name
        self.tenantId = tenantId
        self.user = user
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// A newly issued token: its metadata and, once only, its secret.
public struct IssuedToken: Codable, Sendable {
    public var token: TokenDocument
    public var secret: String

    public init(token: TokenDocument, secret: String) {
        self.token = token
        self.secret = secret
    }
}

/// Who the caller is, as the service sees its token.
public struct WhoAmI: Codable, Sendable, Equatable {
    /// `operator` for a service operator token, otherwise the user's name.
    public var principal: String
    public var tenantId: TenantID?
    public var role: String
    public var tokenId: TokenID

    public init(principal: String, tenantId: TenantID?, role: String, tokenId: TokenID) {
        self.principal = principal
        self.tenantId = tenantId
        self.role = role
        self.tokenId = tokenId
    }
}

/// A device claimed into a tenant.
public struct DeviceDocument: Codable, Sendable, Equatable {
    public var id: DeviceID
    public var tenantId: TenantID
    public var deviceGroupId: DeviceGroupID?
    public var productId: ProductID?
    public var claimedAt: Date
    /// What holds the device's identity, as its provisioning record said.
    public var securityProcessor: SecurityProcessorKind
    /// The newest successful attestation, shown by `device show`.
    public var lastAttestation: AttestationSummary?

    public init(
        id: DeviceID, tenantId: TenantID, deviceGroupId: DeviceGroupID?, productId: ProductID?, claimedAt: Date,
        securityProcessor: SecurityProcessorKind, lastAttestation: AttestationSummary? = nil
    ) {
        self.securityProcessor = securityProcessor
        self.id = id
        self.tenantId = tenantId
        self.deviceGroupId = deviceGroupId
        self.productId = productId
        self.claimedAt = claimedAt
        self.lastAttestation = lastAttestation
    }
}

/// When a device last proved itself, running what, and until when its certificate holds.
public struct AttestationSummary: Codable, Sendable, Equatable {
    public var time: Date
    public var result: String
    public var softwareVersion: String
    public var measurementDigest: String
    public var certificateExpiresAt: Date

    public init(time: Date, result: String, softwareVersion: String, measurementDigest: String, certificateExpiresAt: Date) {
        self.time = time
        self.result = result
        self.softwareVersion = softwareVersion
        self.measurementDigest = measurementDigest
        self.certificateExpiresAt = certificateExpiresAt
    }
}

/// A product: one model of device.
public struct ProductDocument: Codable, Sendable, Equatable {
    public var id: ProductID
    public var tenantId: TenantID
    public var name: String
    public var description: String
    public var createdAt: Date

    public init(id: ProductID, tenantId: TenantID, name: String, description: String, createdAt: Date) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.description = description
        self.createdAt = createdAt
    }
}

/// A device group: devices of one product that share an OS feed, an update policy
/// and (later) a deployment.
public struct DeviceGroupDocument: Codable, Sendable, Equatable {
    public var id: DeviceGroupID
    public var tenantId: TenantID
    public var productId: ProductID
    public var name: String
    public var description: String
    public var osFeed: OSFeed
    public var updatePolicy: UpdatePolicy
    public var createdAt: Date
    /// Installs wait for this daily window (UTC); none means any time.
    public var maintenanceWindow: MaintenanceWindow?
    /// The last time an operator asked the group's devices to check for updates now.
    public var updateRequestedAt: Date?

    public init(
        id: DeviceGroupID, tenantId: TenantID, productId: ProductID, name: String, description: String,
        osFeed: OSFeed, updatePolicy: UpdatePolicy, createdAt: Date, maintenanceWindow: MaintenanceWindow? = nil,
        updateRequestedAt: Date? = nil
    ) {
        self.maintenanceWindow = maintenanceWindow
        self.updateRequestedAt = updateRequestedAt
        self.id = id
        self.tenantId = tenantId
        self.productId = productId
        self.name = name
        self.description = description
        self.osFeed = osFeed
        self.updatePolicy = updatePolicy
        self.createdAt = createdAt
    }
}

/// One entry of the audit log: who did what to which object, when, and how it ended.
public struct AuditEntryDocument: Codable, Sendable, Equatable {
    public var id: Int64
    public var tenantId: TenantID?
    public var actor: String
    public var action: String
    public var target: String
    /// `success`, or the error code of the refusal.
    public var outcome: String
    public var time: Date

    public init(id: Int64, tenantId: TenantID?, actor: String, action: String, target: String, outcome: String, time: Date) {
        self.id = id
        self.tenantId = tenantId
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.time = time
    }
}

/// A certificate authority's public facts.
public struct CertificateAuthorityDocument: Codable, Sendable, Equatable {
    public var kind: String
    public var subject: String
    public var serialNumber: String
    public var notBefore: Date
    public var notAfter: Date
    /// When this CA starts issuing (a renewed tenant CA waits 45 days).
    public var activatesAt: Date
    public var sha256Fingerprint: String

    public init(
        kind: String, subject: String, serialNumber: String, notBefore: Date, notAfter: Date, activatesAt: Date,
        sha256Fingerprint: String
    ) {
        self.kind = kind
        self.subject = subject
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.activatesAt = activatesAt
        self.sha256Fingerprint = sha256Fingerprint
    }
}

/// A list answer. Lists are wrapped so fields can be added without breaking clients.
public struct ListDocument<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public init(items: [Item]) { self.items = items }
}
