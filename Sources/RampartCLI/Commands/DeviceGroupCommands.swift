import ArgumentParser
import Foundation
import RampartModel

struct DeviceGroupCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device-group",
        abstract: "Manage device groups: devices of one product that share an OS feed and update policy.",
        subcommands: [Create.self, List.self, Show.self, Update.self, UpdateNow.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a device group in a product (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device group name (at most 50 characters, unique in the product).") var name: String
        @Option(help: "Product ID or name.") var product: String
        @Option(help: "What the group is for.") var description: String?
        @Option(name: .customLong("os-feed"), help: "retail (default) or retail-eval.") var osFeed: String?
        @Option(name: .customLong("update-policy"), help: "all (default) or no-app-updates.") var updatePolicy: String?

        func run() async throws {
            let feed = try osFeed.map(parseFeed)
            let policy = try updatePolicy.map(parsePolicy)
            let group = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let productID = try await resolveProduct(product, tenant: tenant, client: client).id
                return try await client.createDeviceGroup(
                    CreateDeviceGroupRequest(
                        productId: productID, name: name, description: description, osFeed: feed, updatePolicy: policy),
                    tenant: tenant)
            }
            try global.emit(group) { "Created device group \($0.name) (\($0.id))." }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List device groups.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this product's (ID or name).") var product: String?

        func run() async throws {
            let groups = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let productID = try await product.asyncMap { try await resolveProduct($0, tenant: tenant, client: client).id }
                return try await client.deviceGroups(tenant: tenant, product: productID)
            }
            try global.emit(groups) { groups in
                table(
                    ["ID", "NAME", "PRODUCT", "OS FEED", "UPDATE POLICY"],
                    groups.map {
                        [$0.id.description, $0.name, $0.productId.description, $0.osFeed.rawValue, $0.updatePolicy.rawValue]
                    })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a device group.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the name is not unique).") var product: String?

        func run() async throws {
            let group = try await global.withClient { client in
                try await resolveDeviceGroup(deviceGroup, product: product, tenant: try await global.tenantID(client), client: client)
            }
            try global.emit(group) { group in
                details([
                    ("id", group.id.description), ("name", group.name), ("product", group.productId.description),
                    ("description", group.description), ("os feed", group.osFeed.rawValue),
                    ("update policy", group.updatePolicy.rawValue),
                    ("maintenance window", group.maintenanceWindow.map { "\($0.startUTC) UTC for \($0.durationMinutes) min" } ?? "none (any time)"),
                    ("update requested", group.updateRequestedAt.map(date) ?? "-"), ("created", date(group.createdAt)),
                ])
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a device group (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the name is not unique).") var product: String?
        @Option(name: .customLong("new-name"), help: "New name.") var newName: String?
        @Option(help: "New description.") var description: String?
        @Option(name: .customLong("os-feed"), help: "retail or retail-eval.") var osFeed: String?
        @Option(name: .customLong("update-policy"), help: "all or no-app-updates.") var updatePolicy: String?
        @Option(
            name: .customLong("maintenance-window"),
            help: "Installs wait for this daily window: HH:MM/MINUTES in UTC (e.g. 02:00/120), or none.")
        var maintenanceWindow: String?

        func run() async throws {
            let request = UpdateDeviceGroupRequest(
                name: newName, description: description, osFeed: try osFeed.map(parseFeed),
                updatePolicy: try updatePolicy.map(parsePolicy), maintenanceWindow: try maintenanceWindow.map(parseWindow))
            guard newName != nil || description != nil || osFeed != nil || updatePolicy != nil || maintenanceWindow != nil else {
                throw ValidationError("give at least one of --new-name, --description, --os-feed, --update-policy, --maintenance-window")
            }
            let group = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let found = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                return try await client.updateDeviceGroup(found.id, request, tenant: tenant)
            }
            try global.emit(group) { "Updated device group \($0.name) (\($0.id))." }
        }
    }

    struct UpdateNow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "update-now",
            abstract: "Ask a device group's devices to check for updates at their next contact (Contributor).",
            discussion: "Devices contact the service at most every five minutes; installs still wait for the maintenance window.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the name is not unique).") var product: String?

        func run() async throws {
            let group = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let found = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                return try await client.requestUpdateNow(group: found.id, tenant: tenant)
            }
            try global.emit(group) { "Asked the devices of \($0.name) to check for updates at their next contact (within 5 minutes)." }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a device group (Administrator); refused while devices are in it.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the name is not unique).") var product: String?

        func run() async throws {
            let deleted = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let found = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                try await client.deleteDeviceGroup(found.id, tenant: tenant)
                return found
            }
            try global.done("Deleted device group \(deleted.name).", ["id": deleted.id.description])
        }
    }
}

private func parseWindow(_ text: String) throws -> MaintenanceWindow? {
    if text == "none" { return nil }
    let parts = text.split(separator: "/")
    guard parts.count == 2, let minutes = Int(parts[1]) else {
        throw ValidationError("--maintenance-window is HH:MM/MINUTES in UTC, e.g. 02:00/120, or none")
    }
    let window = MaintenanceWindow(startUTC: String(parts[0]), durationMinutes: minutes)
    guard window.isValid else { throw ValidationError("--maintenance-window: start 00:00–23:59, 1–1440 minutes") }
    return window
}

private func parseFeed(_ text: String) throws -> OSFeed {
    guard let feed = OSFeed(rawValue: text) else { throw ValidationError("unknown OS feed '\(text)': use retail or retail-eval") }
    return feed
}

private func parsePolicy(_ text: String) throws -> UpdatePolicy {
    guard let policy = UpdatePolicy(rawValue: text) else {
        throw ValidationError("unknown update policy '\(text)': use all or no-app-updates")
    }
    return policy
}
