import ArgumentParser
import Foundation
import RampartModel

struct DeploymentCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployment",
        abstract: "Say which app images a device group runs.",
        discussion: """
            The newest deployment of a device group is what its devices should run; older ones are \\
            kept as history. A deployment holds one image per app component; an empty one removes \\
            all apps. Groups with the no-app-updates policy keep their apps (system software still \\
            updates). See what a device does about it with `rampart device show-deployment-status`.
            """,
        subcommands: [Create.self, List.self, Show.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deploy images to a device group (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("device-group"), help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the group name is not unique).") var product: String?
        @Option(parsing: .upToNextOption, help: "Image IDs, one per app component (none: remove all apps).") var images: [String] = []

        func run() async throws {
            let ids = try images.map { text in
                guard let id = ImageID(text) else { throw ValidationError("'\(text)' is not an image ID (a UUID)") }
                return id
            }
            let deployment = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let group = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                return try await client.createDeployment(images: ids, group: group.id, tenant: tenant)
            }
            try global.emit(deployment) {
                "Created deployment \($0.id): \($0.images.isEmpty ? "no apps" : $0.images.map { "\($0.name) \($0.version)" }.joined(separator: ", "))."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a device group's deployments, newest (in force) first.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("device-group"), help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the group name is not unique).") var product: String?

        func run() async throws {
            let deployments = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let group = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                return try await client.deployments(group: group.id, tenant: tenant)
            }
            try global.emit(deployments) { deployments in
                table(
                    ["ID", "CREATED", "BY", "IMAGES", ""],
                    deployments.enumerated().map { index, deployment in
                        [deployment.id.description, date(deployment.createdAt), deployment.createdBy,
                         deployment.images.map { "\($0.name) \($0.version)" }.joined(separator: ", "), index == 0 ? "in force" : ""]
                    })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one deployment.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The deployment ID.") var deployment: String

        func run() async throws {
            guard let id = DeploymentID(deployment) else { throw ValidationError("'\(deployment)' is not a deployment ID (a UUID)") }
            let document = try await global.withClient { client in try await client.deployment(id, tenant: try await global.tenantID(client)) }
            try global.emit(document) { deployment in
                details(
                    [("deployment", deployment.id.description), ("device group", deployment.deviceGroupId.description),
                     ("created", "\(date(deployment.createdAt)) by \(deployment.createdBy)")]
                        + deployment.images.map { ("image", "\($0.imageId)  \($0.name) \($0.version) (security version \($0.securityVersion))") })
            }
        }
    }
}
