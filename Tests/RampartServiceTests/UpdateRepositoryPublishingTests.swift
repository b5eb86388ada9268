import Foundation
import RampartModel
import RampartTUF
import RampartTestSupport
@testable import RampartService
import Testing

/// The publisher under a movable clock: versions move only on change or near expiry, and
/// the root is renewed as its next version, which a client can walk to.
@Suite struct UpdateRepositoryPublishingTests {
    @Test(arguments: engines)
    func versionsMoveOnlyOnChangeOrNearExpiry(engine: DatabaseEngine) async throws {
        let clock = TestClock()
        try await ServiceHarness.with(engine, clock: clock) { harness in
            let group = try await harness.test { client in
                let created = try await client.createTenant("Contoso", operatorToken: harness.operatorToken)
                let product = try await client.createProduct("Thermostat", tenant: created.tenant.id, token: created.token.secret)
                return try await client.groups(of: product.id, tenant: created.tenant.id, token: created.token.secret)[0]
            }
            let repository = harness.api.updateRepository
            func publish() async throws -> [RoleName: Int] {
                try await harness.database.transaction { db in
                    try await repository.publish(group: group, db: db, now: clock.now)
                    var versions: [RoleName: Int] = [:]
                    for role in [RoleName.targets, .snapshot, .timestamp] {
                        versions[role] = try await repository.latest(role, group: group.id, db: db)?.version
                    }
                    return versions
                }
            }
            func needsPublish() async throws -> Bool {
                try await harness.database.read { db in try await repository.needsPublish(group: group, db: db, now: clock.now) }
            }
            #expect(try await needsPublish(), "nothing published yet")
            #expect(try await publish() == [.targets: 1, .snapshot: 1, .timestamp: 1])
            #expect(try await !needsPublish(), "the common poll reads only")
            #expect(try await publish() == [.targets: 1, .snapshot: 1, .timestamp: 1], "nothing changed")
            clock.advance(days: 0.6)  // timestamp (24 h) has under 12 h left
            #expect(try await needsPublish())
            #expect(try await publish() == [.targets: 1, .snapshot: 1, .timestamp: 2])
            clock.advance(days: 4.5)  // snapshot (7 d) has under 3 d left
            #expect(try await publish() == [.targets: 1, .snapshot: 2, .timestamp: 3])
            clock.advance(days: 21)  // targets (30 d) has under 10 d left
            #expect(try await publish() == [.targets: 2, .snapshot: 3, .timestamp: 4])

            // A client holding root 1 walks to root 2 once the root is renewed.
            let root1 = try await harness.database.read { db in try await repository.root(tenant: group.tenantId, version: 1, db: db) }
            clock.advance(days: 310)
            let current = try await harness.database.transaction { db in
                try await repository.currentRoot(tenant: group.tenantId, db: db, now: clock.now)
            }
            #expect(current.version == 2)
            var trusted = try TrustedMetadata(root: try #require(root1), now: clock.now)
            try trusted.updateRoot(current.bytes)
            try trusted.finishRootUpdates()
            #expect(trusted.root.common.version == 2)
        }
    }
}
