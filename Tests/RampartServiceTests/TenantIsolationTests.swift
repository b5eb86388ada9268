import Foundation
import HTTPTypes
import RampartModel
import RampartTestSupport
@testable import RampartService
import Testing

/// One tenant's token never sees or touches another tenant's objects: every
/// tenant-scoped route answers 404, exactly as for a tenant that does not exist.
@Suite struct TenantIsolationTests {
    @Test(arguments: engines)
    func anotherTenantsAdministratorGets404OnEveryRoute(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let contoso = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let fabrikam = try await client.createTenant("Fabrikam", operatorToken: harness.operatorToken)
                let tenant = contoso.tenant.id
                let product = try await client.createProduct("Thermostat", tenant: tenant, token: contoso.token.secret)
                let group = try await client.groups(of: product.id, tenant: tenant, token: contoso.token.secret)[0]
                let claim = try await harness.claim(group: group.id)
                let device = claim.deviceId
                _ = try await client.call(.post, "/v1/tenants/\(tenant)/devices", token: contoso.token.secret, json: claim)
                let image = try await client.addImage(version: "1.0.0", tenant: tenant, token: contoso.token.secret)
                    .decode(ImageDocument.self)
                let deployment = try await client.call(
                    .post, "/v1/tenants/\(tenant)/device-groups/\(group.id)/deployments", token: contoso.token.secret,
                    json: CreateDeploymentRequest(imageIds: [image.id])
                ).decode(DeploymentDocument.self)
                let substitutions = [
                    "{tenantId}": tenant.description, "{productId}": product.id.description,
                    "{deviceGroupId}": group.id.description, "{deviceId}": device.hex, "{user}": "admin",
                    "{tokenId}": contoso.token.token.id.description, "{imageId}": image.id.description,
                    "{deploymentId}": deployment.id.description,
                ]
                let tenantRoutes = harness.api.endpoints.filter { $0.path.contains("{tenantId}") }
                #expect(tenantRoutes.count >= 20)
                for endpoint in tenantRoutes {
                    var path = endpoint.path
                    for (key, value) in substitutions { path = path.replacingOccurrences(of: key, with: value) }
                    let answer = try await client.call(endpoint.method, path, token: fabrikam.token.secret, raw: "{}")
                    #expect(answer.status == .notFound, "\(endpoint.method) \(endpoint.path): \(answer.status) \(answer.text)")
                    #expect(answer.error?.error == "tenant_not_found")
                }
                // Nothing changed: Contoso still has its device, product and admin token.
                let devices = try await client.call(.get, "/v1/tenants/\(tenant)/devices", token: contoso.token.secret)
                    .decode(ListDocument<DeviceDocument>.self).items
                #expect(devices.map(\.id) == [device])
                let images = try await client.call(.get, "/v1/tenants/\(tenant)/images", token: contoso.token.secret)
                    .decode(ListDocument<ImageDocument>.self).items
                #expect(images == [image])
                // And Fabrikam's own listing shows none of it.
                let theirs = try await client.call(.get, "/v1/tenants", token: fabrikam.token.secret)
                    .decode(ListDocument<TenantDocument>.self).items
                #expect(theirs.map(\.name) == ["Fabrikam"])
            }
        }
    }

    @Test func operatorSeesTenantsButNotTheirData() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let contoso = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let listed = try await client.call(.get, "/v1/tenants", token: harness.operatorToken)
                #expect(listed.status == .ok)
                let devices = try await client.call(
                    .get, "/v1/tenants/\(contoso.tenant.id)/devices", token: harness.operatorToken)
                #expect(devices.status == .notFound)
            }
        }
    }
}
