import Foundation
import RampartDevice
import Testing

/// When `rampartd run` renews and how it backs off when the service is away.
@Suite struct RenewalPolicyTests {
    @Test func renewsAtHalfLife() {
        let start = Date(timeIntervalSince1970: 1_000_000)
        let policy = RenewalPolicy()
        #expect(policy.renewal(notBefore: start, notAfter: start.addingTimeInterval(86_400 + 300)) == start.addingTimeInterval(43_350))
    }

    @Test func backoffGrowsIsCappedAndJittered() {
        let policy = RenewalPolicy(initialBackoff: 2, maximumBackoff: 60)
        var generator = SystemRandomNumberGenerator()
        for attempt in 1...12 {
            let ceiling = min(60, 2 * pow(2, Double(attempt - 1)))
            let pauses = (0..<200).map { _ in policy.backoff(attempt: attempt, using: &generator) }
            #expect(pauses.allSatisfy { $0 >= ceiling / 2 && $0 <= ceiling }, "attempt \(attempt)")
            // Jitter: a fleet retrying together spreads out instead of arriving in one wave.
            #expect(Set(pauses).count > 150, "attempt \(attempt)")
        }
        #expect(policy.backoff(attempt: 1_000, using: &generator) <= 60)
    }
}
