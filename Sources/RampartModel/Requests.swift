public import Foundation

/// A request body the service accepts. `fields` lists every key it knows, so the
/// service can refuse a body with an unknown field instead of silently ignoring a typo.
public protocol APIRequestBody: Codable, Sendable {
    static var fields: Set<String> { get }
}

public struct CreateTenantRequest: APIRequestBody {
    public static let fields: Set<String> = ["name", "administrator"]
    public var name: String
    /// Name of the first Administrator; "admin" when absent.
    public var administrator: String?
    public init(name: String, administrator: String? = nil) {
        self.name = name
        self.administrator = administrator
    }
}

public struct AssignRoleRequest: APIRequestBody {
    public static let fields: Set<String> = ["user", "role"]
    public var user: String
    public var role: Role
    public init(user: String, role: Role) {
        self.user = user
        self.role = role
    }
}

public struct CreateTokenRequest: APIRequestBody {
    public static let fields: Set<String> = ["user", "name", "expiresInDays"]
    /// The user the token acts as; the caller when absent. Only Administrators may name another user.
    public var user: String?
    public var name: String?
    public var expiresInDays: Int?
    public init(user: String? = nil, name: String? = nil, expiresInDays: Int? = nil) {
        self.user = user
        self.name = name
        self.expiresInDays = expiresInDays
    }
}

/// `POST /v1/tenants/{tenantId}/devices`: claim a device by its provisioning record.
public struct ClaimDeviceRequest: APIRequestBody {
    public static let fields: Set<String> = [
        "deviceId", "deviceGroupId", "securityProcessor", "identityCertificate", "endorsementKeyCertificate",
    ]
    public var deviceId: DeviceID
    public var deviceGroupId: DeviceGroupID?
    public var securityProcessor: SecurityProcessorKind
    /// PEM, endorsed by a manufacturer CA; see ``ProvisioningRecord``.
    public var identityCertificate: String
    public var endorsementKeyCertificate: String?

    public init(record: ProvisioningRecord, deviceGroupId: DeviceGroupID? = nil) {
        deviceId = record.deviceId
        securityProcessor = record.securityProcessor
        identityCertificate = record.identityCertificate
        endorsementKeyCertificate = record.endorsementKeyCertificate
        self.deviceGroupId = deviceGroupId
    }

    public var record: ProvisioningRecord {
        ProvisioningRecord(
            deviceId: deviceId, securityProcessor: securityProcessor, identityCertificate: identityCertificate,
            endorsementKeyCertificate: endorsementKeyCertificate)
    }
}

public struct UpdateDeviceRequest: APIRequestBody {
    public static let fields: Set<String> = ["deviceGroupId"]
    public var deviceGroupId: DeviceGroupID
    public init(deviceGroupId: DeviceGroupID) { self.deviceGroupId = deviceGroupId }
}

public struct CreateProductRequest: APIRequestBody {
    public static let fields: Set<String> = ["name", "description"]
    public var name: String
    public var description: String?
    public init(name: String, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

public struct UpdateProductRequest: APIRequestBody {
    public static let fields: Set<String> = ["name", "description"]
    public var name: String?
    public var description: String?
    public init(name: String? = nil, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

public struct CreateDeviceGroupRequest: APIRequestBody {
    public static let fields: Set<String> = ["productId", "name", "description", "osFeed", "updatePolicy"]
    public var productId: ProductID
    public var name: String
    public var description: String?
    public var osFeed: OSFeed?
    public var updatePolicy: UpdatePolicy?
    public init(
        productId: ProductID, name: String, description: String? = nil, osFeed: OSFeed? = nil,
        updatePolicy: UpdatePolicy? = nil
    ) {
        self.productId = productId
        self.name = name
        self.description = description
        self.osFeed = osFeed
        self.updatePolicy = updatePolicy
    }
}

public struct UpdateDeviceGroupRequest: APIRequestBody {
    public static let fields: Set<String> = ["name", "description", "osFeed", "updatePolicy", "maintenanceWindow"]
    public var name: String?
    public var description: String?
    public var osFeed: OSFeed?
    public var updatePolicy: UpdatePolicy?
    /// Absent: unchanged; `null`: cleared (installs any time); a window: set.
    public var maintenanceWindow: MaintenanceWindow??

    public init(
        name: String? = nil, description: String? = nil, osFeed: OSFeed? = nil, updatePolicy: UpdatePolicy? = nil,
        maintenanceWindow: MaintenanceWindow?? = nil
    ) {
        self.name = name
        self.description = description
        self.osFeed = osFeed
        self.updatePolicy = updatePolicy
        self.maintenanceWindow = maintenanceWindow
    }

    enum CodingKeys: String, CodingKey { case name, description, osFeed, updatePolicy, maintenanceWindow }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        osFeed = try container.decodeIfPresent(OSFeed.self, forKey: .osFeed)
        updatePolicy = try container.decodeIfPresent(UpdatePolicy.self, forKey: .updatePolicy)
        if container.contains(.maintenanceWindow) {
            maintenanceWindow = .some(try container.decodeNil(forKey: .maintenanceWindow)
                ? nil : try container.decode(MaintenanceWindow.self, forKey: .maintenanceWindow))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encodeIfPresent(description, forKey: .description)
        try container.encodeIfPresent(osFeed, forKey: .osFeed)
        try container.encodeIfPresent(updatePolicy, forKey: .updatePolicy)
        switch maintenanceWindow {
        case .none: break
        case .some(.none): try container.encodeNil(forKey: .maintenanceWindow)
        case .some(.some(let window)): try container.encode(window, forKey: .maintenanceWindow)
        }
    }
}

/// `POST /v1/tenants/{t}/devices/{d}/development-capability`.
public struct EnableDevelopmentRequest: APIRequestBody {
    public static let fields: Set<String> = ["developerKeys", "validDays"]
    /// ECDSA P-256 public keys (SPKI PEM), 1–10, whose signatures sideloaded apps may carry.
    public var developerKeys: [String]
    /// 1–365; 30 when absent.
    public var validDays: Int?
    public init(developerKeys: [String], validDays: Int? = nil) {
        self.developerKeys = developerKeys
        self.validDays = validDays
    }
}
