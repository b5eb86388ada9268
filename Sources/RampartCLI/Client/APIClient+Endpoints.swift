public import Foundation
public import RampartModel
public import RampartImage
import NIOHTTP1

/// The API's routes as typed calls.
extension APIClient {
    public func whoAmI() async throws -> WhoAmI { try await get("/v1/whoami") }
    public func rootCertificatePEM() async throws -> String { try await text("/v1/pki/root") }

    // Tenants
    public func createTenant(_ request: CreateTenantRequest) async throws -> TenantCreated {
        try await post("/v1/tenants", request)
    }
    public func tenants() async throws -> [TenantDocument] {
        try await get("/v1/tenants", as: ListDocument<TenantDocument>.self).items
    }
    public func tenant(_ id: TenantID) async throws -> TenantDocument { try await get("/v1/tenants/\(id)") }

    // Roles and tokens
    public func assignRole(_ request: AssignRoleRequest, tenant: TenantID) async throws -> UserDocument {
        try await post("/v1/tenants/\(tenant)/roles", request)
    }
    public func users(tenant: TenantID) async throws -> [UserDocument] {
        try await get("/v1/tenants/\(tenant)/roles", as: ListDocument<UserDocument>.self).items
    }
    public func removeRole(user: String, tenant: TenantID) async throws {
        try await delete("/v1/tenants/\(tenant)/roles/\(Self.pathSegment(user))")
    }
    public func createToken(_ request: CreateTokenRequest, tenant: TenantID?) async throws -> IssuedToken {
        try await post(tenant.map { "/v1/tenants/\($0)/tokens" } ?? "/v1/operator/tokens", request)
    }
    public func tokens(tenant: TenantID?) async throws -> [TokenDocument] {
        try await get(tenant.map { "/v1/tenants/\($0)/tokens" } ?? "/v1/operator/tokens", as: ListDocument<TokenDocument>.self)
            .items
    }
    public func revokeToken(_ id: TokenID, tenant: TenantID?) async throws {
        try await delete(tenant.map { "/v1/tenants/\($0)/tokens/\(id)" } ?? "/v1/operator/tokens/\(id)")
    }

    // Images
    public func addImage(package: Data, tenant: TenantID) async throws -> ImageDocument {
        let (_, data) = try await send(.POST, "/v1/tenants/\(tenant)/images", body: ("application/zip", package))
        return try JSONDecoder.rampart.decode(ImageDocument.self, from: data)
    }
    public func images(tenant: TenantID, component: ComponentID? = nil) async throws -> [ImageDocument] {
        let query = component.map { "?componentId=\($0)" } ?? ""
        return try await get("/v1/tenants/\(tenant)/images\(query)", as: ListDocument<ImageDocument>.self).items
    }
    public func image(_ id: ImageID, tenant: TenantID) async throws -> ImageDocument {
        try await get("/v1/tenants/\(tenant)/images/\(id)")
    }
    public func imagePackage(_ id: ImageID, tenant: TenantID) async throws -> Data {
        try await send(.GET, "/v1/tenants/\(tenant)/images/\(id)/package").1
    }

    // Deployments
    public func createDeployment(
        images: [ImageID], group: DeviceGroupID, tenant: TenantID, rollout: RolloutRequest? = nil
    ) async throws -> DeploymentDocument {
        try await post("/v1/tenants/\(tenant)/device-groups/\(group)/deployments", CreateDeploymentRequest(imageIds: images, rollout: rollout))
    }
    public func pauseDeployment(_ id: DeploymentID, reason: String?, tenant: TenantID) async throws -> DeploymentDocument {
        try await post("/v1/tenants/\(tenant)/deployments/\(id)/pause", PauseDeploymentRequest(reason: reason))
    }
    public func resumeDeployment(_ id: DeploymentID, tenant: TenantID) async throws -> DeploymentDocument {
        try await post("/v1/tenants/\(tenant)/deployments/\(id)/resume", [String: String]())
    }
    public func deployments(group: DeviceGroupID, tenant: TenantID) async throws -> [DeploymentDocument] {
        try await get("/v1/tenants/\(tenant)/device-groups/\(group)/deployments", as: ListDocument<DeploymentDocument>.self).items
    }
    public func deployment(_ id: DeploymentID, tenant: TenantID) async throws -> DeploymentDocument {
        try await get("/v1/tenants/\(tenant)/deployments/\(id)")
    }
    public func requestUpdateNow(group: DeviceGroupID, tenant: TenantID) async throws -> DeviceGroupDocument {
        try await post("/v1/tenants/\(tenant)/device-groups/\(group)/update-now", [String: String]())
    }
    public func deploymentStatus(device: DeviceID, tenant: TenantID) async throws -> DeploymentStatusDocument {
        try await get("/v1/tenants/\(tenant)/devices/\(device)/deployment-status")
    }
    public func enableDevelopment(device: DeviceID, _ request: EnableDevelopmentRequest, tenant: TenantID) async throws -> CapabilityFile {
        try await post("/v1/tenants/\(tenant)/devices/\(device)/development-capability", request)
    }

    // A device's own routes (mutual TLS: a client made with a credential)
    public func updateCheck() async throws -> UpdateCheckResponse { try await get("/v1/device/update-check") }
    public func reportUpdateState(_ report: DeviceUpdateReport) async throws {
        _ = try await send(.POST, "/v1/device/update-state", json: report)
    }

    // Devices
    public func publishRelease(_ request: PublishReleaseRequest) async throws -> SystemSoftwareRelease {
        try await post("/v1/os/releases", request)
    }
    /// Publishes a system-software package; the service signs it.
    public func publishReleasePackage(_ package: Data, feed: OSFeed) async throws -> SystemSoftwareRelease {
        let (_, data) = try await send(.POST, "/v1/os/releases/package?feed=\(feed.rawValue)", body: ("application/zip", package))
        return try JSONDecoder.rampart.decode(SystemSoftwareRelease.self, from: data)
    }
    public func releases() async throws -> [SystemSoftwareRelease] {
        try await get("/v1/os/releases", as: ListDocument<SystemSoftwareRelease>.self).items
    }
    public func revokeRelease(version: String, reason: String) async throws -> SystemSoftwareRelease {
        try await post("/v1/os/releases/\(version)/revoke", RevokeReleaseRequest(reason: reason))
    }
    public func claimDevice(_ request: ClaimDeviceRequest, tenant: TenantID) async throws -> DeviceDocument {
        try await post("/v1/tenants/\(tenant)/devices", request)
    }
    public func devices(tenant: TenantID, group: DeviceGroupID? = nil) async throws -> [DeviceDocument] {
        let query = group.map { "?deviceGroupId=\($0)" } ?? ""
        return try await get("/v1/tenants/\(tenant)/devices\(query)", as: ListDocument<DeviceDocument>.self).items
    }
    public func device(_ id: DeviceID, tenant: TenantID) async throws -> DeviceDocument {
        try await get("/v1/tenants/\(tenant)/devices/\(id)")
    }
    public func updateDevice(_ id: DeviceID, _ request: UpdateDeviceRequest, tenant: TenantID) async throws -> DeviceDocument {
        try await patch("/v1/tenants/\(tenant)/devices/\(id)", request)
    }
    public func releaseDevice(_ id: DeviceID, tenant: TenantID) async throws {
        try await delete("/v1/tenants/\(tenant)/devices/\(id)")
    }

    // Products
    public func createProduct(_ request: CreateProductRequest, tenant: TenantID) async throws -> ProductDocument {
        try await post("/v1/tenants/\(tenant)/products", request)
    }
    public func products(tenant: TenantID) async throws -> [ProductDocument] {
        try await get("/v1/tenants/\(tenant)/products", as: ListDocument<ProductDocument>.self).items
    }
    public func product(_ id: ProductID, tenant: TenantID) async throws -> ProductDocument {
        try await get("/v1/tenants/\(tenant)/products/\(id)")
    }
    public func updateProduct(_ id: ProductID, _ request: UpdateProductRequest, tenant: TenantID) async throws
        -> ProductDocument
    {
        try await patch("/v1/tenants/\(tenant)/products/\(id)", request)
    }
    public func deleteProduct(_ id: ProductID, tenant: TenantID) async throws {
        try await delete("/v1/tenants/\(tenant)/products/\(id)")
    }

    // Device groups
    public func createDeviceGroup(_ request: CreateDeviceGroupRequest, tenant: TenantID) async throws -> DeviceGroupDocument {
        try await post("/v1/tenants/\(tenant)/device-groups", request)
    }
    public func deviceGroups(tenant: TenantID, product: ProductID? = nil) async throws -> [DeviceGroupDocument] {
        let query = product.map { "?productId=\($0)" } ?? ""
        return try await get("/v1/tenants/\(tenant)/device-groups\(query)", as: ListDocument<DeviceGroupDocument>.self).items
    }
    public func deviceGroup(_ id: DeviceGroupID, tenant: TenantID) async throws -> DeviceGroupDocument {
        try await get("/v1/tenants/\(tenant)/device-groups/\(id)")
    }
    public func updateDeviceGroup(_ id: DeviceGroupID, _ request: UpdateDeviceGroupRequest, tenant: TenantID) async throws
        -> DeviceGroupDocument
    {
        try await patch("/v1/tenants/\(tenant)/device-groups/\(id)", request)
    }
    public func deleteDeviceGroup(_ id: DeviceGroupID, tenant: TenantID) async throws {
        try await delete("/v1/tenants/\(tenant)/device-groups/\(id)")
    }

    // Device attestation (open to devices; no token needed)
    public func attestationChallenge(device: DeviceID) async throws -> AttestationChallenge {
        try await post("/v1/attestation/challenge", AttestationChallengeRequest(deviceId: device))
    }
    public func submitEvidence(_ evidence: AttestationEvidence, recovery: Bool = false) async throws -> AttestationResult {
        try await post(recovery ? "/v1/attestation/evidence?purpose=recovery" : "/v1/attestation/evidence", evidence)
    }

    // CA and audit
    public func chainPEM(tenant: TenantID) async throws -> String { try await text("/v1/tenants/\(tenant)/ca/chain") }
    public func certificateAuthorities(tenant: TenantID) async throws -> [CertificateAuthorityDocument] {
        try await get("/v1/tenants/\(tenant)/ca", as: ListDocument<CertificateAuthorityDocument>.self).items
    }
    public func auditEntries(tenant: TenantID, limit: Int = 100) async throws -> [AuditEntryDocument] {
        try await get("/v1/tenants/\(tenant)/audit?limit=\(limit)", as: ListDocument<AuditEntryDocument>.self).items
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
            ?? text
    }
}

extension APIClient {
    /// `since`, `deviceGroupId`, `imageId` as the errors routes take them; an ISO 8601
    /// `since` becomes the duration back to it (the route takes durations: `30m`, `24h`, `7d`).
    static func errorQuery(since: String?, group: DeviceGroupID?, image: ImageID?, now: Date = Date()) throws -> String {
        var items: [URLQueryItem] = []
        if let since {
            var value = since
            if let date = try? Date(since, strategy: .iso8601) {
                guard date <= now else { throw CLIError("--since \(since) is in the future") }
                let minutes = Int((now.timeIntervalSince(date) / 60).rounded(.up))
                value = minutes <= 9_999_999 ? "\(minutes)m" : "\(Int((Double(minutes) / 1440).rounded(.up)))d"
            }
            items.append(URLQueryItem(name: "since", value: value))
        }
        if let group { items.append(URLQueryItem(name: "deviceGroupId", value: group.description)) }
        if let image { items.append(URLQueryItem(name: "imageId", value: image.description)) }
        var components = URLComponents()
        components.queryItems = items
        return items.isEmpty ? "" : components.percentEncodedQuery.map { "?\($0)" } ?? ""
    }

    public func errorBuckets(tenant: TenantID, since: String? = nil, group: DeviceGroupID? = nil, image: ImageID? = nil) async throws -> [ErrorBucket] {
        try await get("/v1/tenants/\(tenant)/errors\(try Self.errorQuery(since: since, group: group, image: image))", as: ListDocument<ErrorBucket>.self).items
    }

    public func errorBucket(_ id: String, tenant: TenantID) async throws -> ErrorBucket {
        try await get("/v1/tenants/\(tenant)/errors/\(id)")
    }

    public func exportErrors(tenant: TenantID, since: String? = nil, group: DeviceGroupID? = nil, image: ImageID? = nil) async throws -> String {
        try await text("/v1/tenants/\(tenant)/errors/export\(try Self.errorQuery(since: since, group: group, image: image))")
    }
}
