@testable import RampartService
import Synchronization
import Testing

/// The lock in front of the SQLite connection: one body at a time, however they suspend.
@Suite struct AsyncLockTests {
    final class Counter: @unchecked Sendable {
        var value = 0
        var inside = 0
        var mostInside = 0
    }

    @Test func oneBodyAtATimeAcrossSuspensions() async throws {
        let lock = AsyncLock()
        let counter = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await lock.withLock {
                        counter.inside += 1
                        counter.mostInside = max(counter.mostInside, counter.inside)
                        let seen = counter.value
                        await Task.yield()
                        counter.value = seen + 1
                        counter.inside -= 1
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(counter.value == 200)
        #expect(counter.mostInside == 1)
    }

    struct Refusal: Error {}

    /// A body that throws gives the lock back.
    @Test func aThrowingBodyReleases() async throws {
        let lock = AsyncLock()
        await #expect(throws: Refusal.self) { try await lock.withLock { throw Refusal() } }
        #expect(try await lock.withLock { 7 } == 7)
    }
}
