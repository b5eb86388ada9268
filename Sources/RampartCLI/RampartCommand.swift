public import ArgumentParser

/// `rampart`: the operator's and app developer's tool, modelled on the `azsphere` tree.
public struct RampartCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rampart",
        abstract: "Operate a Rampart Security Service and its fleet of devices.",
        discussion: """
            Start with `rampart demo` to see the whole loop on this machine, or log in to a \
            running service with `rampart login`. Every command takes --json.
            """,
        subcommands: [
            DemoCommand.self, LoginCommand.self, WhoAmICommand.self, TenantCommands.self, RoleCommands.self,
            TokenCommands.self, DeviceCommands.self, ProductCommands.self, DeviceGroupCommands.self, CACommands.self,
            AuditCommands.self, OSCommands.self, AppCommands.self, ImageCommands.self, DeploymentCommands.self, ErrorCommands.self,
            SimCommand.self, BenchCommand.self,
        ]
    )

    public init() {}
}
