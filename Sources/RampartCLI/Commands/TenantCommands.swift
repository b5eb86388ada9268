import ArgumentParser
import Foundation
import RampartModel

struct TenantCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Create, list, show and select tenants.",
        discussion: "A tenant holds a device maker's devices, products, users and certificates, isolated from every other tenant.",
        subcommands: [Create.self, List.self, Show.self, Select.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tenant (service operator token) and its first Administrator.",
            discussion: "Prints the Administrator's API token once; log in with it to act in the tenant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Tenant name (at most 50 characters, unique).") var name: String
        @Option(help: "Name of the first Administrator.") var administrator: String = "admin"

        func run() async throws {
            let created = try await global.withClient { client in
                try await client.createTenant(CreateTenantRequest(name: name, administrator: administrator))
            }
            try global.emit(created) { created in
                details([
                    ("tenant", "\(created.tenant.name) (\(created.tenant.id))"),
                    ("administrator", created.administrator.name),
                    ("token", created.token.secret),
                    ("expires", date(created.token.token.expiresAt)),
                ]) + "\nThe token is shown only now. Act as this Administrator with: rampart login --server URL --token TOKEN"
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenants this token can see.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let tenants = try await global.withClient { try await $0.tenants() }
            try global.emit(tenants) { tenants in
                table(["ID", "NAME", "CREATED"], tenants.map { [$0.id.description, $0.name, date($0.createdAt)] })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a tenant (default: the selected one).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Tenant ID or name.") var tenant: String?

        func run() async throws {
            let shown = try await global.withClient { client in
                var options = global
                if let tenant { options.tenant = tenant }
                return try await client.tenant(try await options.tenantID(client))
            }
            try global.emit(shown) { tenant in
                details([("id", tenant.id.description), ("name", tenant.name), ("created", date(tenant.createdAt))])
            }
        }
    }

    struct Select: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a tenant the default for later commands.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Tenant ID or name.") var tenant: String

        func run() async throws {
            let selected = try await global.withClient { client in
                var options = global
                options.tenant = tenant
                return try await client.tenant(try await options.tenantID(client))
            }
            var configuration = try CLIConfiguration.load(from: global.configurationPath)
            configuration.tenantId = selected.id
            try configuration.save(to: global.configurationPath)
            try global.emit(selected) { "Selected tenant \($0.name) (\($0.id))." }
        }
    }
}
