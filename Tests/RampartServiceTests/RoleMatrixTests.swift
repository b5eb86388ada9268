import Foundation
import HTTPTypes
import RampartModel
import RampartTestSupport
@testable import RampartService
import Testing

/// Every role against every mutating route: the role model is enforced by the service,
/// not by the CLI, and a refused call changes nothing.
@Suite struct RoleMatrixTests {
    /// Objects a case may act on, created fresh by the Administrator for every case.
    struct Fixture: Sendable {
        let tenant: TenantID
        let adminToken: String
        let callerToken: String
        let callerName: String
        let product: ProductID
        let group: DeviceGroupID
        let otherGroup: DeviceGroupID
        let device: DeviceID
        let otherUser: String
        /// A genuine device nobody claimed yet.
        let spareClaim: ClaimDeviceRequest
    }

    struct Case: Sendable, CustomStringConvertible {
        let description: String
        /// The status each role gets.
        let expected: @Sendable (Role) -> HTTPResponse.Status
        let call: @Sendable (RouterClient, Fixture) async throws -> Answer
    }

    static func atLeast(_ minimum: Role, success: HTTPResponse.Status) -> @Sendable (Role) -> HTTPResponse.Status {
        { $0.includes(minimum) ? success : .forbidden }
    }

    static let developerKey = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEss/WlcXIoGNJ0arC6R0iX2Khpu93\n28Ktprz9u3+ZLCKt8ItzlLYt9M5VGl7OpmsSmtRKxln+c+HrrJkisV6C7Q==\n-----END PUBLIC KEY-----\n"

    static let cases: [Case] = [
        Case(description: "role.add", expected: atLeast(.administrator, success: .ok)) { client, f in
            try await client.call(.post, "/v1/tenants/\(f.tenant)/roles", token: f.callerToken, json: AssignRoleRequest(user: "newcomer", role: .reader))
        },
        Case(description: "role.remove", expected: atLeast(.administrator, success: .noContent)) { client, f in
            try await client.call(.delete, "/v1/tenants/\(f.tenant)/roles/\(f.otherUser)", token: f.callerToken)
        },
        Case(description: "token.create for oneself", expected: { _ in .created }) { client, f in
            try await client.call(.post, "/v1/tenants/\(f.tenant)/tokens", token: f.callerToken, json: CreateTokenRequest(name: "mine"))
        },
        Case(description: "token.create for another user", expected: atLeast(.administrator, success: .created)) { client, f in
            try await client.call(.post, "/v1/tenants/\(f.tenant)/tokens", token: f.callerToken, json: CreateTokenRequest(user: f.otherUser))
        },
        Case(description: "token.revoke another user's token", expected: { $0 == .administrator ? .noContent : .notFound }) {
            client, f in
            let issued = try await client.call(
                .post, "/v1/tenants/\(f.tenant)/tokens", token: f.adminToken, json: CreateTokenRequest(user: f.otherUser)
            ).decode(IssuedToken.self)
            return try await client.call(.delete, "/v1/tenants/\(f.tenant)/tokens/\(issued.token.id)", token: f.callerToken)
        },
        Case(description: "device.claim", expected: atLeast(.contributor, success: .created)) { client, f in
            try await client.call(.post, "/v1/tenants/\(f.tenant)/devices", token: f.callerToken, json: f.spareClaim)
        },
        Case(description: "device.update", expected: atLeast(.contributor, success: .ok)) { client, f in
            try await client.call(
                .patch, "/v1/tenants/\(f.tenant)/devices/\(f.device)", token: f.callerToken,
                json: UpdateDeviceRequest(deviceGroupId: f.otherGroup))
        },
        Case(description: "device.release", expected: atLeast(.administrator, success: .noContent)) { client, f in
            try await client.call(.delete, "/v1/tenants/\(f.tenant)/devices/\(f.device)", token: f.callerToken)
        },
        Case(description: "device.enable-development", expected: atLeast(.administrator, success: .created)) { client, f in
            try await client.call(
                .post, "/v1/tenants/\(f.tenant)/devices/\(f.device)/development-capability", token: f.callerToken,
                json: EnableDevelopmentRequest(developerKeys: [developerKey]))
        },
        Case(description: "product.create", expected: atLeast(.contributor, success: .created)) { client, f in
            try await client.call(.post, "/v1/tenants/\(f.tenant)/products", token: f.callerToken, json: CreateProductRequest(name: "New \(UUID())".prefix(40).description))
        },
        Case(description: "product.update", expected: atLeast(.contributor, success: .ok)) { client, f in
            try await client.call(
                .patch, "/v1/tenants/\(f.tenant)/products/\(f.product)", token: f.callerToken,
                json: UpdateProductRequest(description: "changed"))
        },
        Case(description: "product.delete", expected: atLeast(.administrator, success: .noContent)) { client, f in
            let empty = try await client.createProduct("Empty \(UUID())".prefix(40).description, tenant: f.tenant, token: f.adminToken)
            return try await client.call(.delete, "/v1/tenants/\(f.tenant)/products/\(empty.id)", token: f.callerToken)
        },
        Case(description: "device-group.create", expected: atLeast(.contributor, success: .created)) { client, f in
            try await client.call(
                .post, "/v1/tenants/\(f.tenant)/device-groups", token: f.callerToken,
                json: CreateDeviceGroupRequest(productId: f.product, name: "Lab"))
        },
        Case(description: "device-group.update", expected: atLeast(.contributor, success: .ok)) { client, f in
            try await client.call(
                .patch, "/v1/tenants/\(f.tenant)/device-groups/\(f.group)", token: f.callerToken,
                json: UpdateDeviceGroupRequest(updatePolicy: .noAppUpdates))
        },
        Case(description: "device-group.delete", expected: atLeast(.administrator, success: .noContent)) { client, f in
            try await client.call(.delete, "/v1/tenants/\(f.tenant)/device-groups/\(f.otherGroup)", token: f.callerToken)
        },
        Case(description: "image.add", expected: atLeast(.contributor, success: .created)) { client, f in
            try await client.addImage(version: "1.0.\(UInt32.random(in: 0...UInt32.max))", tenant: f.tenant, token: f.callerToken)
        },
        Case(description: "deployment.create", expected: atLeast(.contributor, success: .created)) { client, f in
            try await client.call(
                .post, "/v1/tenants/\(f.tenant)/device-groups/\(f.group)/deployments", token: f.callerToken,
                json: CreateDeploymentRequest(imageIds: []))
        },
        Case(description: "deployment.pause", expected: atLeast(.contributor, success: .ok)) { client, f in
            let staged = try await client.call(
                .post, "/v1/tenants/\(f.tenant)/device-groups/\(f.group)/deployments", token: f.adminToken,
                json: CreateDeploymentRequest(imageIds: [], rollout: RolloutRequest(canaryDevices: [f.device])))
            let id = try staged.decode(DeploymentDocument.self).id
            return try await client.call(
                .post, "/v1/tenants/\(f.tenant)/deployments/\(id)/pause", token: f.callerToken, json: PauseDeploymentRequest(reason: "look"))
        },
        Case(description: "device-group.update-now", expected: atLeast(.contributor, success: .accepted)) { client, f in
            try await client.call(.post, "/v1/tenants/\(f.tenant)/device-groups/\(f.group)/update-now", token: f.callerToken)
        },
        Case(description: "os.publish a package (operator only)", expected: { _ in .forbidden }) { client, f in
            try await client.upload(
                "/v1/os/releases/package", token: f.callerToken, bytes: try SystemSoftwareTests.package("m", version: "9.9.9"))
        },
        Case(description: "tenant.create (operator only)", expected: { _ in .forbidden }) { client, f in
            try await client.call(.post, "/v1/tenants", token: f.callerToken, json: CreateTenantRequest(name: "Rogue"))
        },
        Case(description: "operator-token.create (operator only)", expected: { _ in .forbidden }) { client, f in
            try await client.call(.post, "/v1/operator/tokens", token: f.callerToken, json: CreateTokenRequest())
        },
        Case(description: "audit list (Administrator or Reader)", expected: { $0 == .contributor ? .forbidden : .ok }) {
            client, f in
            try await client.call(.get, "/v1/tenants/\(f.tenant)/audit", token: f.callerToken)
        },
    ]

    @Test(arguments: engines)
    func everyRoleAgainstEveryMutatingRoute(engine: DatabaseEngine) async throws {
        try await ServiceHarness.with(engine) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let admin = created.token.secret
                var callers: [Role: String] = [.administrator: admin]
                callers[.contributor] = try await client.user("connie", .contributor, tenant: tenant, adminToken: admin)
                callers[.reader] = try await client.user("reggie", .reader, tenant: tenant, adminToken: admin)
                let names: [Role: String] = [.administrator: "admin", .contributor: "connie", .reader: "reggie"]
                var index = 0
                for testCase in Self.cases {
                    for role in Role.allCases {
                        index += 1
                        let product = try await client.createProduct("P\(index)", tenant: tenant, token: admin)
                        let groups = try await client.groups(of: product.id, tenant: tenant, token: admin)
                        let claim = try await harness.claim(group: groups[0].id)
                        let device = claim.deviceId
                        let claimed = try await client.call(.post, "/v1/tenants/\(tenant)/devices", token: admin, json: claim)
                        #expect(claimed.status == .created)
                        let otherUser = "other\(index)"
                        _ = try await client.user(otherUser, .reader, tenant: tenant, adminToken: admin)
                        let fixture = Fixture(
                            tenant: tenant, adminToken: admin, callerToken: callers[role]!, callerName: names[role]!,
                            product: product.id, group: groups[0].id, otherGroup: groups[1].id, device: device,
                            otherUser: otherUser, spareClaim: try await harness.claim())
                        let answer = try await testCase.call(client, fixture)
                        #expect(
                            answer.status == testCase.expected(role),
                            "\(testCase) as \(role.rawValue) on \(engine): \(answer.status) \(answer.text)")
                        if answer.status == .forbidden {
                            #expect(answer.error?.error == "forbidden" || answer.error?.error == "operator_only")
                        }
                    }
                }
                // Refusals are in the audit log with their outcome.
                let audit = try await client.call(.get, "/v1/tenants/\(tenant)/audit?limit=10000", token: admin)
                    .decode(ListDocument<AuditEntryDocument>.self).items
                #expect(audit.contains { $0.actor == "reggie" && $0.action == "product.create" && $0.outcome == "forbidden" })
                #expect(audit.contains { $0.actor == "connie" && $0.action == "device.release" && $0.outcome == "forbidden" })
            }
        }
    }

    @Test func readerChangesNothing() async throws {
        try await ServiceHarness.with(.sqlite) { harness in
            try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let tenant = created.tenant.id
                let reader = try await client.user("reggie", .reader, tenant: tenant, adminToken: created.token.secret)
                let refused = try await client.call(
                    .post, "/v1/tenants/\(tenant)/products", token: reader, json: CreateProductRequest(name: "Sneaky"))
                #expect(refused.status == .forbidden)
                let products = try await client.call(.get, "/v1/tenants/\(tenant)/products", token: reader)
                    .decode(ListDocument<ProductDocument>.self).items
                #expect(products.isEmpty)
            }
        }
    }
}
