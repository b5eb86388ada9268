/// What a user may do inside one tenant.
///
/// - Administrator: everything, including role assignment, releases and deletes.
/// - Contributor: claims devices and creates or changes products, device groups,
///   images and deployments; never deletes and never assigns roles.
/// - Reader: reads everything of its tenant and changes nothing.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case administrator = "Administrator"
    case contributor = "Contributor"
    case reader = "Reader"

    private var rank: Int {
        switch self {
        case .reader: 0
        case .contributor: 1
        case .administrator: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    /// Whether this role grants at least what `other` grants.
    public func includes(_ other: Role) -> Bool { self >= other }

    /// Parses a role name case-insensitively ("reader", "Reader").
    public init?(name: String) {
        guard let role = Role.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
            return nil
        }
        self = role
    }
}

/// Which OS feed a device group takes system software from.
public enum OSFeed: String, Codable, Sendable, CaseIterable {
    case retail
    case retailEval = "retail-eval"
}

/// Which updates a device group accepts.
public enum UpdatePolicy: String, Codable, Sendable, CaseIterable {
    /// System software and applications.
    case all
    /// System software only: application images stay as they are (used for development).
    case noAppUpdates = "no-app-updates"
}
