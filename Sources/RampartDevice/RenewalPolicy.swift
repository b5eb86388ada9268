public import Foundation

/// When a device asks for its next certificate: at half-life when all is well, and after a
/// growing, jittered pause when the service cannot be reached — so a fleet that lost its
/// service for an hour does not return in one synchronised wave.
public struct RenewalPolicy: Sendable {
    /// The first retry waits about this long.
    public var initialBackoff: TimeInterval
    /// No retry waits longer than this.
    public var maximumBackoff: TimeInterval
    /// How often a device told to update tries again (it keeps checking for updates meanwhile).
    public var updateRequiredRetry: TimeInterval

    public init(initialBackoff: TimeInterval = 2, maximumBackoff: TimeInterval = 600, updateRequiredRetry: TimeInterval = 3600) {
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.updateRequiredRetry = updateRequiredRetry
    }

    /// Half-way through the certificate's validity.
    public func renewal(notBefore: Date, notAfter: Date) -> Date {
        notBefore.addingTimeInterval(notAfter.timeIntervalSince(notBefore) / 2)
    }

    /// The pause before retry number `attempt` (1 for the first retry): exponential, capped,
    /// then drawn uniformly from its upper half ("equal jitter"), so it never collapses to 0.
    public func backoff(attempt: Int, using generator: inout some RandomNumberGenerator) -> TimeInterval {
        let exponent = Double(min(max(attempt - 1, 0), 30))
        let ceiling = min(maximumBackoff, initialBackoff * pow(2, exponent))
        return Double.random(in: (ceiling / 2)...ceiling, using: &generator)
    }
}
