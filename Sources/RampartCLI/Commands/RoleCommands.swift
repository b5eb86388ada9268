import ArgumentParser
import Foundation
import RampartModel

struct RoleCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role",
        abstract: "Give users of the tenant a role, list them, remove them.",
        discussion: """
            Administrator: everything, including roles, releases and deletes. Contributor: claims \
            devices, creates and changes products, device groups, images and deployments. Reader: \
            reads everything of the tenant and changes nothing.
            """,
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user with a role, or change a user's role (Administrator).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "User name.") var user: String
        @Option(help: "Administrator, Contributor or Reader.") var role: String

        func run() async throws {
            guard let role = Role(name: role) else {
                throw ValidationError("unknown role '\(role)': use Administrator, Contributor or Reader")
            }
            let added = try await global.withClient { client in
                try await client.assignRole(AssignRoleRequest(user: user, role: role), tenant: try await global.tenantID(client))
            }
            try global.emit(added) { "\($0.name) is now \($0.role.rawValue). Create a token for them with: rampart token create --user \($0.name)" }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's users and their roles.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let users = try await global.withClient { client in try await client.users(tenant: try await global.tenantID(client)) }
            try global.emit(users) { users in
                table(["USER", "ROLE", "SINCE"], users.map { [$0.name, $0.role.rawValue, date($0.createdAt)] })
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user from the tenant and revoke their tokens (Administrator).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "User name.") var user: String

        func run() async throws {
            try await global.withClient { client in
                try await client.removeRole(user: user, tenant: try await global.tenantID(client))
            }
            try global.done("Removed \(user); their tokens no longer work.", ["user": user])
        }
    }
}

struct TokenCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke API tokens.",
        discussion: """
            Tokens are 256-bit secrets shown once and stored by the service only as a hash. \
            Everyone may manage their own tokens; Administrators may manage anyone's in their \
            tenant. With an operator token (no tenant selected) these commands manage operator tokens.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; its secret is printed once.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "User the token acts as (default: you).") var user: String?
        @Option(help: "A label to recognise the token by.") var name: String?
        @Option(name: .customLong("expires-in-days"), help: "Lifetime in days, 1 to 365.") var expiresInDays: Int = 90

        func run() async throws {
            let issued = try await global.withClient { client in
                try await client.createToken(
                    CreateTokenRequest(user: user, name: name, expiresInDays: expiresInDays),
                    tenant: try await scope(global, client))
            }
            try global.emit(issued) { issued in
                details([
                    ("id", issued.token.id.description), ("user", issued.token.user ?? "operator"),
                    ("expires", date(issued.token.expiresAt)), ("secret", issued.secret),
                ]) + "\nThe secret is shown only now."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let tokens = try await global.withClient { client in try await client.tokens(tenant: try await scope(global, client)) }
            try global.emit(tokens) { tokens in
                table(
                    ["ID", "NAME", "USER", "EXPIRES", "STATE"],
                    tokens.map {
                        [
                            $0.id.description, $0.name, $0.user ?? "operator", date($0.expiresAt),
                            $0.revokedAt != nil ? "revoked" : ($0.expiresAt < Date() ? "expired" : "active"),
                        ]
                    })
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token at once.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Token ID.") var id: String

        func run() async throws {
            guard let tokenID = TokenID(id) else { throw ValidationError("'\(id)' is not a token ID") }
            try await global.withClient { client in try await client.revokeToken(tokenID, tenant: try await scope(global, client)) }
            try global.done("Revoked token \(tokenID).", ["id": tokenID.description])
        }
    }

    /// The tenant for tenant tokens; `nil` (operator routes) for an operator token.
    static func scope(_ global: GlobalOptions, _ client: APIClient) async throws -> TenantID? {
        if global.tenant != nil { return try await global.tenantID(client) }
        return try await client.whoAmI().tenantId
    }
}

private func scope(_ global: GlobalOptions, _ client: APIClient) async throws -> TenantID? {
    try await TokenCommands.scope(global, client)
}
