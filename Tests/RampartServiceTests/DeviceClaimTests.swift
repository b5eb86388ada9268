import Foundation
import HTTPTypes
import RampartModel
import RampartTestSupport
@testable import RampartService
import Testing

@Suite struct DeviceClaimTests {
    @Test(arguments: engines)
    func claimConflictsAndRelease(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let contoso = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let fabrikam = try await client.createTenant("Fabrikam", operatorToken: harness.operatorToken)
                let claim = try await harness.claim()
                let device = claim.deviceId
                let first = try await client.call(.post, "/v1/tenants/\(contoso.tenant.id)/devices", token: contoso.token.secret, json: claim)
                #expect(first.status == .created)

                let stolen = try await client.call(.post, "/v1/tenants/\(fabrikam.tenant.id)/devices", token: fabrikam.token.secret, json: claim)
                #expect(stolen.status == .conflict)
                #expect(stolen.error?.error == "device_claimed_elsewhere")

                let twice = try await client.call(.post, "/v1/tenants/\(contoso.tenant.id)/devices", token: contoso.token.secret, json: claim)
                #expect(twice.status == .conflict)
                #expect(twice.error?.error == "device_already_claimed")

                let released = try await client.call(.delete, "/v1/tenants/\(contoso.tenant.id)/devices/\(device)", token: contoso.token.secret)
                #expect(released.status == .noContent)
                let gone = try await client.call(.get, "/v1/tenants/\(contoso.tenant.id)/devices/\(device)", token: contoso.token.secret)
                #expect(gone.status == .notFound)

                let reclaimed = try await client.call(.post, "/v1/tenants/\(fabrikam.tenant.id)/devices", token: fabrikam.token.secret, json: claim)
                #expect(reclaimed.status == .created)

                let audit = try await client.call(.get, "/v1/tenants/\(contoso.tenant.id)/audit", token: contoso.token.secret)
                    .decode(ListDocument<AuditEntryDocument>.self).items
                #expect(audit.contains { $0.action == "device.claim" && $0.target == "device/\(device)" && $0.outcome == "success" })
                #expect(audit.contains { $0.action == "device.release" && $0.target == "device/\(device)" })
                let theirs = try await client.call(.get, "/v1/tenants/\(fabrikam.tenant.id)/audit", token: fabrikam.token.secret)
                    .decode(ListDocument<AuditEntryDocument>.self).items
                #expect(theirs.filter { $0.action == "device.claim" }.map(\.outcome).sorted() == ["device_claimed_elsewhere", "success"])
            }
        }
    }

    /// Many tenants race for one device; exactly one wins.
    @Test(arguments: engines)
    func racingClaimsHaveOneWinner(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                var tenants: [TenantCreated] = []
                for index in 0..<8 {
                    tenants.append(try await client.createTenant("T\(index)", operatorToken: harness.operatorToken))
                }
                let claim = try await harness.claim()
                let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for tenant in tenants {
                        group.addTask {
                            try await client.call(
                                .post, "/v1/tenants/\(tenant.tenant.id)/devices", token: tenant.token.secret,
                                json: claim
                            ).status
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == .created }.count == 1)
                #expect(statuses.filter { $0 == .conflict }.count == tenants.count - 1)
            }
        }
    }

    @Test(arguments: engines)
    func productsAndDeviceGroups(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let admin = created.token.secret
                let product = try await client.createProduct("Thermostat", tenant: tenant, token: admin)
                let groups = try await client.groups(of: product.id, tenant: tenant, token: admin)
                #expect(Set(groups.map(\.name)) == ["Development", "Field Test", "Production", "Production OS Evaluation", "Field Test OS Evaluation"])
                #expect(groups.first { $0.name == "Development" }?.updatePolicy == .noAppUpdates)
                #expect(groups.filter { $0.osFeed == .retailEval }.map(\.name).sorted() == ["Field Test OS Evaluation", "Production OS Evaluation"])

                let duplicate = try await client.call(
                    .post, "/v1/tenants/\(tenant)/device-groups", token: admin,
                    json: CreateDeviceGroupRequest(productId: product.id, name: "Production"))
                #expect(duplicate.status == .conflict)
                #expect(duplicate.error?.error == "device_group_name_taken")

                // A device in a group blocks deleting the group and the product.
                let production = groups.first { $0.name == "Production" }!
                let claim = try await harness.claim(group: production.id)
                let device = claim.deviceId
                _ = try await client.call(.post, "/v1/tenants/\(tenant)/devices", token: admin, json: claim)
                let shown = try await client.call(.get, "/v1/tenants/\(tenant)/devices/\(device)", token: admin).decode(DeviceDocument.self)
                #expect(shown.productId == product.id)
                let groupDelete = try await client.call(.delete, "/v1/tenants/\(tenant)/device-groups/\(production.id)", token: admin)
                #expect(groupDelete.status == .conflict)
                #expect(groupDelete.error?.error == "device_group_in_use")
                let productDelete = try await client.call(.delete, "/v1/tenants/\(tenant)/products/\(product.id)", token: admin)
                #expect(productDelete.error?.error == "product_in_use")

                _ = try await client.call(.delete, "/v1/tenants/\(tenant)/devices/\(device)", token: admin)
                let deleted = try await client.call(.delete, "/v1/tenants/\(tenant)/products/\(product.id)", token: admin)
                #expect(deleted.status == .noContent)
                let remaining = try await client.call(.get, "/v1/tenants/\(tenant)/device-groups", token: admin)
                    .decode(ListDocument<DeviceGroupDocument>.self).items
                #expect(remaining.isEmpty)
            }
        }
    }
}
