public import Foundation

/// How long each kind of certificate in the Rampart hierarchy lives.
///
/// Root 20 years → Intermediate 10 years → Tenant CA 2 years → Device 24 hours; image
/// signing certificates 1 year.
/// There is no CRL: a device's trust lapses unless it is renewed.
public enum Lifetime: Sendable {
    case root, intermediate, tenantCA, device, server, signing

    /// The certificate's `notAfter`, counted from `start`.
    public func end(from start: Date) -> Date {
        let calendar = Calendar(identifier: .gregorian)
        switch self {
        case .root: return calendar.date(byAdding: .year, value: 20, to: start)!
        case .intermediate: return calendar.date(byAdding: .year, value: 10, to: start)!
        case .tenantCA: return calendar.date(byAdding: .year, value: 2, to: start)!
        case .device: return start.addingTimeInterval(24 * 3600)
        case .server: return start.addingTimeInterval(397 * 24 * 3600)
        case .signing: return calendar.date(byAdding: .year, value: 1, to: start)!
        }
    }

    /// A tenant CA is renewed once fewer than this many seconds remain…
    public static let tenantCARenewalWindow: TimeInterval = 90 * 24 * 3600
    /// …and its successor starts issuing this long after it was created, so relying
    /// parties have time to fetch the new chain while both are valid.
    public static let tenantCAActivationDelay: TimeInterval = 45 * 24 * 3600
    /// Certificates are back-dated by this much to tolerate clock skew between machines.
    public static let clockSkew: TimeInterval = 5 * 60
}
