import Foundation
import HTTPTypes
@testable import RampartImage
import RampartModel
import RampartTestSupport
@testable import RampartService
import Testing

/// Deployments, the group settings around them, and the status route.
@Suite struct DeploymentTests {
    /// A second app component, so deployments can hold two apps.
    static let otherManifest = Data(
        """
        {"SchemaVersion": 1, "Name": "blink", "ComponentId": "0d6f3bb1-8a8e-4f3e-9a52-3c1c3f0a7b11", "EntryPoint": "blink.wasm",
         "Capabilities": {}, "Limits": {"MemoryKB": 256}}
        """.utf8)

    @Test(arguments: engines)
    func theNewestDeploymentIsInForceAndHistoryIsKept(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let contoso = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let fabrikam = try await client.createTenant("Fabrikam", operatorToken: harness.operatorToken)
                let tenant = contoso.tenant.id
                let token = contoso.token.secret
                let product = try await client.createProduct("Thermostat", tenant: tenant, token: token)
                let group = try await client.groups(of: product.id, tenant: tenant, token: token).first { $0.name == "Production" }!
                let v1 = try await client.addImage(version: "1.0.0", tenant: tenant, token: token).decode(ImageDocument.self)
                let v2 = try await client.addImage(version: "2.0.0", tenant: tenant, token: token).decode(ImageDocument.self)
                let blink = try ImagePackage.app(manifest: Self.otherManifest, wasm: Wasm.command, version: "0.1.0", securityVersion: 1)
                let other = try await client.upload("/v1/tenants/\(tenant)/images", token: token, bytes: try blink.zipped())
                    .decode(ImageDocument.self)
                let path = "/v1/tenants/\(tenant)/device-groups/\(group.id)/deployments"

                let first = try await client.call(.post, path, token: token, json: CreateDeploymentRequest(imageIds: [v1.id, other.id]))
                #expect(first.status == .created, "\(first.text)")
                let firstDeployment = try first.decode(DeploymentDocument.self)
                #expect(firstDeployment.images.map(\.imageId) == [v1.id, other.id] && firstDeployment.createdBy == "admin")
                let second = try await client.call(.post, path, token: token, json: CreateDeploymentRequest(imageIds: [v2.id]))
                    .decode(DeploymentDocument.self)
                let listed = try await client.call(.get, path, token: token).decode(ListDocument<DeploymentDocument>.self).items
                #expect(listed.map(\.id) == [second.id, firstDeployment.id], "newest first")
                #expect(try await client.call(.get, "/v1/tenants/\(tenant)/deployments/\(firstDeployment.id)", token: token)
                    .decode(DeploymentDocument.self) == firstDeployment)

                // Refused, with nothing created: two versions of one app, another tenant's
                // image, an image that does not exist, too many.
                let twice = try await client.call(.post, path, token: token, json: CreateDeploymentRequest(imageIds: [v1.id, v2.id]))
                #expect(twice.status == .badRequest && twice.error?.error == "deployment_duplicate_component", "\(twice.text)")
                let theirs = try await client.addImage(version: "1.0.0", tenant: fabrikam.tenant.id, token: fabrikam.token.secret)
                    .decode(ImageDocument.self)
                let foreign = try await client.call(.post, path, token: token, json: CreateDeploymentRequest(imageIds: [theirs.id]))
                #expect(foreign.status == .notFound && foreign.error?.error == "image_not_found", "\(foreign.text)")
                let many = try await client.call(
                    .post, path, token: token, json: CreateDeploymentRequest(imageIds: (0..<65).map { _ in ImageID.random() }))
                #expect(many.status == .badRequest)
                #expect(try await client.call(.get, path, token: token).decode(ListDocument<DeploymentDocument>.self).items.count == 2)

                // The status route: a claimed device in the group that never reported.
                let claim = try await harness.claim(group: group.id)
                _ = try await client.call(.post, "/v1/tenants/\(tenant)/devices", token: token, json: claim)
                let status = try await client.call(.get, "/v1/tenants/\(tenant)/devices/\(claim.deviceId)/deployment-status", token: token)
                    .decode(DeploymentStatusDocument.self)
                #expect(status.reason == "awaiting_contact" && !status.inSync)
                #expect(status.shouldRun?.deploymentId == second.id && status.shouldRun?.apps.map(\.imageId) == [v2.id])
                #expect(status.shouldRun?.appsManaged == true && status.shouldRun?.systemSoftware == nil)

                // Groups with deployments can still be deleted (after their devices leave), and products too.
                _ = try await client.call(.delete, "/v1/tenants/\(tenant)/devices/\(claim.deviceId)", token: token)
                #expect(try await client.call(.delete, "/v1/tenants/\(tenant)/device-groups/\(group.id)", token: token).status == .noContent)
                let other2 = try await client.groups(of: product.id, tenant: tenant, token: token)[0]
                _ = try await client.call(
                    .post, "/v1/tenants/\(tenant)/device-groups/\(other2.id)/deployments", token: token,
                    json: CreateDeploymentRequest(imageIds: []))
                #expect(try await client.call(.delete, "/v1/tenants/\(tenant)/products/\(product.id)", token: token).status == .noContent)
            }
        }
    }

    @Test func maintenanceWindowAndUpdateNowAreGroupSettings() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let token = created.token.secret
                let product = try await client.createProduct("Thermostat", tenant: tenant, token: token)
                let group = try await client.groups(of: product.id, tenant: tenant, token: token)[0]
                let path = "/v1/tenants/\(tenant)/device-groups/\(group.id)"

                let set = try await client.call(.patch, path, token: token, raw: #"{"maintenanceWindow": {"startUTC": "02:00", "durationMinutes": 120}}"#)
                #expect(try set.decode(DeviceGroupDocument.self).maintenanceWindow == MaintenanceWindow(startUTC: "02:00", durationMinutes: 120))
                let renamed = try await client.call(.patch, path, token: token, raw: #"{"description": "kept"}"#)
                #expect(try renamed.decode(DeviceGroupDocument.self).maintenanceWindow != nil, "an absent field changes nothing")
                for bad in [#"{"startUTC": "2:00", "durationMinutes": 120}"#, #"{"startUTC": "02:00", "durationMinutes": 0}"#,
                            #"{"startUTC": "25:00", "durationMinutes": 10}"#, #""always""#] {
                    let refused = try await client.call(.patch, path, token: token, raw: #"{"maintenanceWindow": \#(bad)}"#)
                    #expect(refused.status == .badRequest, "\(bad): \(refused.text)")
                }
                let cleared = try await client.call(.patch, path, token: token, raw: #"{"maintenanceWindow": null}"#)
                #expect(try cleared.decode(DeviceGroupDocument.self).maintenanceWindow == nil)

                let now = try await client.call(.post, "\(path)/update-now", token: token)
                #expect(now.status == .accepted)
                #expect(try now.decode(DeviceGroupDocument.self).updateRequestedAt == Date(timeIntervalSince1970: harness.clock.now.timeIntervalSince1970.rounded(.down)))
            }
        }
    }
}
