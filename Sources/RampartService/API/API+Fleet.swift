import Foundation
import Hummingbird
import RampartModel

extension API {
    var fleetEndpoints: [Endpoint] { deviceEndpoints + productEndpoints + deviceGroupEndpoints }

    /// The device groups every new product starts with, as the seeds' tenants had them.
    static let defaultDeviceGroups: [(name: String, description: String, feed: OSFeed, policy: UpdatePolicy)] = [
        ("Development", "Devices used for development; application updates come only from sideloading.", .retail, .noAppUpdates),
        ("Field Test", "Devices in field testing; all updates.", .retail, .all),
        ("Production", "Devices in production; all updates.", .retail, .all),
        ("Production OS Evaluation", "Production devices evaluating the next system software.", .retailEval, .all),
        ("Field Test OS Evaluation", "Field-test devices evaluating the next system software.", .retailEval, .all),
    ]

    var deviceEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants/{tenantId}/devices", action: "device.claim") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let body = try await request.decodeBody(ClaimDeviceRequest.self)
                let now = now()
                _ = try genuineness.verify(body.record, now: now)
                let device = try await database.transaction { db in
                    if let group = body.deviceGroupId, try await db.deviceGroup(group, in: tenant) == nil {
                        throw ServiceError.notFound("device group", group.description)
                    }
                    guard try await db.claimDevice(body.record, tenant: tenant, group: body.deviceGroupId, at: now) else {
                        if try await db.owner(of: body.deviceId) == tenant {
                            throw ServiceError.conflict(
                                "device_already_claimed", "device \(body.deviceId) is already claimed by this tenant")
                        }
                        throw ServiceError.conflict(
                            "device_claimed_elsewhere",
                            "device \(body.deviceId) is claimed by another tenant; an Administrator of that tenant must release it first"
                        )
                    }
                    try await db.audit(context, target: "device/\(body.deviceId)", at: now)
                    return try await db.device(body.deviceId, in: tenant)!
                }
                return try .json(device, status: .created)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/devices") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let group = try request.queryID("deviceGroupId", as: DeviceGroupID.self)
                let devices = try await database.read { db in try await db.devices(in: tenant, group: group) }
                return try .json(ListDocument(items: devices))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/devices/{deviceId}") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let id = try context.deviceID()
                let device = try await database.read { db -> DeviceDocument? in
                    guard var device = try await db.device(id, in: tenant) else { return nil }
                    device.lastAttestation = try await db.lastAttestation(device: id, tenant: tenant)
                    return device
                }
                guard let device else { throw ServiceError.notFound("device", id.description) }
                return try .json(device)
            },
            Endpoint(.patch, "/v1/tenants/{tenantId}/devices/{deviceId}", action: "device.update") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let id = try context.deviceID()
                let body = try await request.decodeBody(UpdateDeviceRequest.self)
                let now = now()
                let device = try await database.transaction { db in
                    guard try await db.device(id, in: tenant) != nil else { throw ServiceError.notFound("device", id.description) }
                    guard try await db.deviceGroup(body.deviceGroupId, in: tenant) != nil else {
                        throw ServiceError.notFound("device group", body.deviceGroupId.description)
                    }
                    try await db.assignDevice(id, to: body.deviceGroupId)
                    try await db.audit(context, target: "device/\(id) group=\(body.deviceGroupId)", at: now)
                    return try await db.device(id, in: tenant)!
                }
                return try .json(device)
            },
            Endpoint(.delete, "/v1/tenants/{tenantId}/devices/{deviceId}", action: "device.release") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .administrator)
                let id = try context.deviceID()
                let now = now()
                try await database.transaction { db in
                    guard try await db.device(id, in: tenant) != nil else { throw ServiceError.notFound("device", id.description) }
                    try await db.releaseDevice(id)
                    try await db.audit(context, target: "device/\(id)", at: now)
                }
                return .noContent
            },
        ]
    }

    var productEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants/{tenantId}/products", action: "product.create") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let body = try await request.decodeBody(CreateProductRequest.self)
                let name = try validatedName(body.name)
                let description = try validatedDescription(body.description)
                let now = now()
                let product = try await database.transaction { db in
                    if try await db.product(named: name, in: tenant) != nil {
                        throw ServiceError.conflict("product_name_taken", "a product named '\(name)' exists already")
                    }
                    let product = ProductDocument(id: .random(), tenantId: tenant, name: name, description: description, createdAt: now)
                    try await db.insertProduct(product)
                    for group in Self.defaultDeviceGroups {
                        try await db.insertDeviceGroup(
                            DeviceGroupDocument(
                                id: .random(), tenantId: tenant, productId: product.id, name: group.name,
                                description: group.description, osFeed: group.feed, updatePolicy: group.policy, createdAt: now))
                    }
                    try await db.audit(context, target: "product/\(product.id)", at: now)
                    return product
                }
                return try .json(product, status: .created)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/products") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                return try .json(ListDocument(items: try await database.read { db in try await db.products(in: tenant) }))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/products/{productId}") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let id = try context.id("productId", as: ProductID.self)
                guard let product = try await database.read({ db in try await db.product(id, in: tenant) }) else {
                    throw ServiceError.notFound("product", id.description)
                }
                return try .json(product)
            },
            Endpoint(.patch, "/v1/tenants/{tenantId}/products/{productId}", action: "product.update") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let id = try context.id("productId", as: ProductID.self)
                let body = try await request.decodeBody(UpdateProductRequest.self)
                let newName = try body.name.map { try validatedName($0) }
                let newDescription = try body.description.map { try validatedDescription($0) }
                let now = now()
                let product = try await database.transaction { db in
                    guard var product = try await db.product(id, in: tenant) else {
                        throw ServiceError.notFound("product", id.description)
                    }
                    if let newName, newName != product.name {
                        if try await db.product(named: newName, in: tenant) != nil {
                            throw ServiceError.conflict("product_name_taken", "a product named '\(newName)' exists already")
                        }
                        product.name = newName
                    }
                    if let newDescription { product.description = newDescription }
                    try await db.updateProduct(product)
                    try await db.audit(context, target: "product/\(id)", at: now)
                    return product
                }
                return try .json(product)
            },
            Endpoint(.delete, "/v1/tenants/{tenantId}/products/{productId}", action: "product.delete") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .administrator)
                let id = try context.id("productId", as: ProductID.self)
                let now = now()
                try await database.transaction { db in
                    guard try await db.product(id, in: tenant) != nil else {
                        throw ServiceError.notFound("product", id.description)
                    }
                    let devices = try await db.deviceCount(product: id)
                    guard devices == 0 else {
                        throw ServiceError.conflict(
                            "product_in_use", "\(devices) device(s) are in this product's device groups; move or release them first")
                    }
                    try await db.deleteProduct(id)
                    try await db.audit(context, target: "product/\(id)", at: now)
                }
                return .noContent
            },
        ]
    }

    var deviceGroupEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants/{tenantId}/device-groups", action: "device-group.create") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let body = try await request.decodeBody(CreateDeviceGroupRequest.self)
                let name = try validatedName(body.name)
                let description = try validatedDescription(body.description)
                let now = now()
                let group = try await database.transaction { db in
                    guard try await db.product(body.productId, in: tenant) != nil else {
                        throw ServiceError.notFound("product", body.productId.description)
                    }
                    if try await db.deviceGroup(named: name, product: body.productId) != nil {
                        throw ServiceError.conflict(
                            "device_group_name_taken", "the product has a device group named '\(name)' already")
                    }
                    let group = DeviceGroupDocument(
                        id: .random(), tenantId: tenant, productId: body.productId, name: name, description: description,
                        osFeed: body.osFeed ?? .retail, updatePolicy: body.updatePolicy ?? .all, createdAt: now)
                    try await db.insertDeviceGroup(group)
                    try await db.audit(context, target: "device-group/\(group.id)", at: now)
                    return group
                }
                return try .json(group, status: .created)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/device-groups") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let product = try request.queryID("productId", as: ProductID.self)
                let groups = try await database.read { db in try await db.deviceGroups(in: tenant, product: product) }
                return try .json(ListDocument(items: groups))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/device-groups/{deviceGroupId}") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let id = try context.id("deviceGroupId", as: DeviceGroupID.self)
                guard let group = try await database.read({ db in try await db.deviceGroup(id, in: tenant) }) else {
                    throw ServiceError.notFound("device group", id.description)
                }
                return try .json(group)
            },
            Endpoint(.patch, "/v1/tenants/{tenantId}/device-groups/{deviceGroupId}", action: "device-group.update") {
                request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let id = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let body = try await request.decodeBody(UpdateDeviceGroupRequest.self)
                let newName = try body.name.map { try validatedName($0) }
                let newDescription = try body.description.map { try validatedDescription($0) }
                if case .some(.some(let window)) = body.maintenanceWindow, !window.isValid {
                    throw ServiceError.invalidField(
                        "maintenanceWindow", "startUTC is HH:MM (00:00–23:59) and durationMinutes 1–1440, or null for none")
                }
                let now = now()
                let group = try await database.transaction { db in
                    guard var group = try await db.deviceGroup(id, in: tenant) else {
                        throw ServiceError.notFound("device group", id.description)
                    }
                    if let newName, newName != group.name {
                        if try await db.deviceGroup(named: newName, product: group.productId) != nil {
                            throw ServiceError.conflict(
                                "device_group_name_taken", "the product has a device group named '\(newName)' already")
                        }
                        group.name = newName
                    }
                    if let newDescription { group.description = newDescription }
                    if let feed = body.osFeed { group.osFeed = feed }
                    if let policy = body.updatePolicy { group.updatePolicy = policy }
                    if let window = body.maintenanceWindow { group.maintenanceWindow = window }
                    try await db.updateDeviceGroup(group)
                    try await db.audit(context, target: "device-group/\(id)", at: now)
                    return group
                }
                return try .json(group)
            },
            Endpoint(.delete, "/v1/tenants/{tenantId}/device-groups/{deviceGroupId}", action: "device-group.delete") {
                _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .administrator)
                let id = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let now = now()
                try await database.transaction { db in
                    guard try await db.deviceGroup(id, in: tenant) != nil else {
                        throw ServiceError.notFound("device group", id.description)
                    }
                    let devices = try await db.deviceCount(group: id)
                    guard devices == 0 else {
                        throw ServiceError.conflict(
                            "device_group_in_use", "\(devices) device(s) are in this device group; move or release them first")
                    }
                    try await db.deleteDeviceGroup(id)
                    try await db.audit(context, target: "device-group/\(id)", at: now)
                }
                return .noContent
            },
        ]
    }
}
