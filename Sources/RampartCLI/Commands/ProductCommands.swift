import ArgumentParser
import Foundation
import RampartModel

struct ProductCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "product",
        abstract: "Manage products: the models of device a tenant builds.",
        discussion: """
            A new product gets five device groups: Development (no application updates), Field Test, \
            Production, Production OS Evaluation and Field Test OS Evaluation (both on the retail-eval OS feed).
            """,
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a product and its default device groups (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Product name (at most 50 characters).") var name: String
        @Option(help: "What the product is.") var description: String?

        func run() async throws {
            let product = try await global.withClient { client in
                try await client.createProduct(
                    CreateProductRequest(name: name, description: description), tenant: try await global.tenantID(client))
            }
            try global.emit(product) { "Created product \($0.name) (\($0.id)) with its five default device groups." }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List products.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let products = try await global.withClient { client in try await client.products(tenant: try await global.tenantID(client)) }
            try global.emit(products) { products in
                table(["ID", "NAME", "DESCRIPTION"], products.map { [$0.id.description, $0.name, $0.description] })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a product.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Product ID or name.") var product: String

        func run() async throws {
            let shown = try await global.withClient { client in
                try await resolveProduct(product, tenant: try await global.tenantID(client), client: client)
            }
            try global.emit(shown) { product in
                details([
                    ("id", product.id.description), ("name", product.name), ("description", product.description),
                    ("created", date(product.createdAt)),
                ])
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rename a product or change its description (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Product ID or name.") var product: String
        @Option(name: .customLong("new-name"), help: "New name.") var newName: String?
        @Option(help: "New description.") var description: String?

        func run() async throws {
            guard newName != nil || description != nil else { throw ValidationError("give --new-name or --description") }
            let updated = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let found = try await resolveProduct(product, tenant: tenant, client: client)
                return try await client.updateProduct(
                    found.id, UpdateProductRequest(name: newName, description: description), tenant: tenant)
            }
            try global.emit(updated) { "Updated product \($0.name) (\($0.id))." }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a product and its device groups (Administrator); refused while devices are in them.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Product ID or name.") var product: String

        func run() async throws {
            let deleted = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let found = try await resolveProduct(product, tenant: tenant, client: client)
                try await client.deleteProduct(found.id, tenant: tenant)
                return found
            }
            try global.done("Deleted product \(deleted.name).", ["id": deleted.id.description])
        }
    }
}

func resolveProduct(_ text: String, tenant: TenantID, client: APIClient) async throws -> ProductDocument {
    if let id = ProductID(text) { return try await client.product(id, tenant: tenant) }
    guard let product = try await client.products(tenant: tenant).first(where: { $0.name == text }) else {
        throw CLIError("no product named '\(text)' in this tenant")
    }
    return product
}

func resolveDeviceGroup(_ text: String, product: String?, tenant: TenantID, client: APIClient) async throws
    -> DeviceGroupDocument
{
    if let id = DeviceGroupID(text) { return try await client.deviceGroup(id, tenant: tenant) }
    let productID = try await product.asyncMap { try await resolveProduct($0, tenant: tenant, client: client).id }
    let matches = try await client.deviceGroups(tenant: tenant, product: productID).filter { $0.name == text }
    guard let group = matches.first else {
        throw CLIError("no device group named '\(text)'\(product.map { " in product \($0)" } ?? "")")
    }
    guard matches.count == 1 else {
        throw CLIError("\(matches.count) products have a device group named '\(text)': add --product")
    }
    return group
}
