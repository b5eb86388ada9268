import Foundation
import Hummingbird
import RampartModel

extension API {
    /// Deployments (which app images a device group should run), update-now requests, the
    /// per-device deployment status, and the two routes devices use to check in and report.
    var deploymentEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants/{tenantId}/device-groups/{deviceGroupId}/deployments", action: "deployment.create") {
                request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                let user = try context.authorize(tenant, .contributor)
                let groupID = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let body = try await request.decodeBody(CreateDeploymentRequest.self)
                guard body.imageIds.count <= Self.maxImagesPerDeployment else {
                    throw ServiceError.invalidField("imageIds", "a deployment holds at most \(Self.maxImagesPerDeployment) images")
                }
                let now = now()
                let deployment = try await database.transaction { db in
                    if database.engine == .postgres {
                        try await db.query("SELECT id FROM device_groups WHERE id = $1 FOR UPDATE", .of(groupID))
                    }
                    guard try await db.deviceGroup(groupID, in: tenant) != nil else {
                        throw ServiceError.notFound("device group", groupID.description)
                    }
                    var images: [DeployedImage] = []
                    for id in body.imageIds {
                        guard let image = try await db.image(id, in: tenant) else { throw ServiceError.notFound("image", id.description) }
                        guard image.kind == .app else {
                            throw ServiceError.invalidField("imageIds", "image \(id) is system software; deployments hold app images")
                        }
                        if let twin = images.first(where: { $0.componentId == image.componentId }) {
                            throw ServiceError(
                                400, "deployment_duplicate_component",
                                "images \(twin.imageId) and \(id) are both component \(image.componentId); a deployment holds one version of each app")
                        }
                        images.append(DeployedImage(image))
                    }
                    let id = DeploymentID.random()
                    let rollout = try Rollouts.make(
                        body.rollout, deployment: id, groupDevices: try await db.devices(in: tenant, group: groupID).map(\.id),
                        previous: Rollouts.previous(of: try await db.newestDeployment(group: groupID), now: now), now: now)
                    let deployment = DeploymentDocument(
                        id: id, tenantId: tenant, deviceGroupId: groupID, images: images, createdAt: now, createdBy: user.name,
                        rollout: rollout)
                    try await db.insertDeployment(deployment)
                    try await db.audit(context, target: "deployment/\(deployment.id)", at: now)
                    return deployment
                }
                return try .json(deployment.presented(at: now), status: .created)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/device-groups/{deviceGroupId}/deployments") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let groupID = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let deployments = try await database.read { db -> [DeploymentDocument]? in
                    guard try await db.deviceGroup(groupID, in: tenant) != nil else { return nil }
                    return try await db.deployments(group: groupID)
                }
                guard let deployments else { throw ServiceError.notFound("device group", groupID.description) }
                return try .json(ListDocument(items: deployments.map { $0.presented(at: now()) }))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/deployments/{deploymentId}") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let id = try context.id("deploymentId", as: DeploymentID.self)
                guard let deployment = try await database.read({ db in try await db.deployment(id, in: tenant) }) else {
                    throw ServiceError.notFound("deployment", id.description)
                }
                return try .json(deployment.presented(at: now()))
            },
            Endpoint(.post, "/v1/tenants/{tenantId}/deployments/{deploymentId}/pause", action: "deployment.pause") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                let user = try context.authorize(tenant, .contributor)
                let id = try context.id("deploymentId", as: DeploymentID.self)
                let body = try await request.decodeBody(PauseDeploymentRequest.self)
                if body.reason?.isEmpty == true { throw ServiceError.invalidField("reason", "must not be empty (leave it out instead)") }
                let reason = try body.reason.map(validatedDescription) ?? "paused by \(user.name)"
                let now = now()
                let deployment = try await database.transaction { db in
                    guard let deployment = try await db.deployment(id, in: tenant) else { throw ServiceError.notFound("deployment", id.description) }
                    guard let rollout = deployment.rollout, rollout.state(at: now) != .complete,
                        try await db.newestDeployment(group: deployment.deviceGroupId)?.id == id
                    else {
                        throw ServiceError.conflict("rollout_not_running", "deployment \(id) has no staged rollout in progress")
                    }
                    guard try await db.pauseRollout(id, reason: reason, by: user.name, at: now) else {
                        throw ServiceError.conflict("rollout_paused", "the rollout of deployment \(id) is paused already")
                    }
                    try await db.audit(context, target: "deployment/\(id)", at: now)
                    return try await db.deployment(id, in: tenant)!
                }
                return try .json(deployment.presented(at: now))
            },
            Endpoint(.post, "/v1/tenants/{tenantId}/deployments/{deploymentId}/resume", action: "deployment.resume") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let id = try context.id("deploymentId", as: DeploymentID.self)
                let now = now()
                let deployment = try await database.transaction { db in
                    guard try await db.deployment(id, in: tenant) != nil else { throw ServiceError.notFound("deployment", id.description) }
                    guard try await db.resumeRollout(id, at: now) else {
                        throw ServiceError.conflict("rollout_not_paused", "the rollout of deployment \(id) is not paused")
                    }
                    try await db.audit(context, target: "deployment/\(id)", at: now)
                    return try await db.deployment(id, in: tenant)!
                }
                return try .json(deployment.presented(at: now))
            },
            Endpoint(.post, "/v1/tenants/{tenantId}/device-groups/{deviceGroupId}/update-now", action: "device-group.update-now") {
                _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .contributor)
                let groupID = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let now = now()
                let group = try await database.transaction { db in
                    guard var group = try await db.deviceGroup(groupID, in: tenant) else {
                        throw ServiceError.notFound("device group", groupID.description)
                    }
                    group.updateRequestedAt = now
                    try await db.updateDeviceGroup(group)
                    try await db.audit(context, target: "device-group/\(groupID)", at: now)
                    return group
                }
                return try .json(group, status: .accepted)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/devices/{deviceId}/deployment-status") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let id = try context.deviceID()
                let now = now()
                let status = try await database.read { db -> DeploymentStatusDocument? in
                    guard let device = try await db.device(id, in: tenant) else { return nil }
                    let group = try await device.deviceGroupId.asyncMap { try await db.deviceGroup($0, in: tenant) } ?? nil
                    let releases = try await db.releases()
                    let desired = try await group.asyncMap { try await DesiredState.desired(group: $0, db: db, now: now, device: id) }
                    return DeploymentStatus.evaluate(
                        device: id, group: group, desired: desired, releases: releases,
                        stored: try await db.updateStatus(device: id, tenant: tenant), now: now)
                }
                guard let status else { throw ServiceError.notFound("device", id.description) }
                return try .json(status)
            },
            Endpoint(.get, "/v1/device/update-check") { _, context in
                let (device, tenant) = try context.requireDevice()
                let now = now()
                let answer = try await database.transaction { db in
                    try await db.recordContact(device: device, tenant: tenant, at: now)
                    guard let groupID = try await db.device(device, in: tenant)?.deviceGroupId,
                        let group = try await db.deviceGroup(groupID, in: tenant)
                    else {
                        return UpdateCheckResponse(
                            tenantId: tenant, deviceGroupId: nil, deploymentId: nil, checkNow: false,
                            nextContactAfter: Self.contactInterval)
                    }
                    // Pending while the device has not reported since this request (see update-state).
                    let seen = try await db.updateStatus(device: device, tenant: tenant)?.requestSeen ?? .distantPast
                    let checkNow = (group.updateRequestedAt ?? .distantPast) > seen
                    return UpdateCheckResponse(
                        tenantId: tenant, deviceGroupId: groupID, deploymentId: try await db.newestDeployment(group: groupID)?.id,
                        checkNow: checkNow, nextContactAfter: Self.contactInterval, repositoryPath: "/v1/device/tuf/\(groupID)")
                }
                return try .json(answer)
            },
            Endpoint(.post, "/v1/device/update-state") { request, context in
                let (device, tenant) = try context.requireDevice()
                let report = try await request.decodeBody(DeviceUpdateReport.self)
                try Self.validate(report)
                let now = now()
                try await database.transaction { db in
                    if let deployment = report.deploymentId, try await db.deployment(deployment, in: tenant) == nil {
                        throw ServiceError.notFound("deployment", deployment.description)
                    }
                    // The report answers any update-now request made before it.
                    let group = try await db.device(device, in: tenant)?.deviceGroupId.asyncMap { try await db.deviceGroup($0, in: tenant) }
                    let requestSeen = group??.updateRequestedAt
                    if let stored = try await db.recordUpdateReport(report, device: device, tenant: tenant, at: now, requestSeen: requestSeen) {
                        throw ServiceError.conflict(
                            "report_stale", "report \(report.sequence) is older than report \(stored), which the service has; send a higher sequence")
                    }
                }
                return .noContent
            },
        ]
    }

    /// Seconds between a device's contacts: how long an update-now request takes to arrive.
    static let contactInterval = 300
    static let maxImagesPerDeployment = 64

    static func validate(_ report: DeviceUpdateReport) throws {
        guard report.sequence >= 0 else { throw ServiceError.invalidField("sequence", "must not be negative") }
        switch report.state {
        case .failed, .rolledBack:
            guard let reason = report.reason, DeviceUpdateReport.failureReasons.contains(reason) else {
                throw ServiceError.invalidField(
                    "reason", "a \(report.state.rawValue) report names one of \(DeviceUpdateReport.failureReasons.sorted().joined(separator: ", "))")
            }
        case .pending where report.reason == "development_mode", .confirmed where report.reason == "system_software_held":
            break
        default:
            guard report.reason == nil else {
                throw ServiceError.invalidField(
                    "reason", "only failed and rolled-back reports carry one (pending ones development_mode, confirmed ones system_software_held)")
            }
        }
        guard (report.detail?.count ?? 0) <= APILimits.maxDescriptionLength else {
            throw ServiceError.invalidField("detail", "must be at most \(APILimits.maxDescriptionLength) characters")
        }
        guard report.running.apps.count <= maxImagesPerDeployment else {
            throw ServiceError.invalidField("running.apps", "at most \(maxImagesPerDeployment) apps")
        }
        if let version = report.running.systemSoftware?.version, !isValidVersion(version) {
            throw ServiceError.invalidField("running.systemSoftware.version", "is not a version")
        }
        for app in report.running.apps where !isValidVersion(app.version) {
            throw ServiceError.invalidField("running.apps.version", "is not a version")
        }
    }
}
