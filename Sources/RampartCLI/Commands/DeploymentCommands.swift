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

            A deployment may be staged (--canary-percent or --canary-devices): the canary devices \
            get it first, the others keep the previous deployment's apps until --soak-minutes \
            pass. Each failure report from the group re-checks the canary: when the new images' \
            failure rate exceeds the previous images' by more than --halt-threshold devices per \
            1,000, the rollout pauses itself and says why (`deployment show`, the audit log). \
            `deployment pause|resume` for people.
            """,
        subcommands: [Create.self, List.self, Show.self, Pause.self, Resume.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deploy images to a device group (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("device-group"), help: "Device group ID, or name.") var deviceGroup: String
        @Option(help: "Product ID or name (when the group name is not unique).") var product: String?
        @Option(parsing: .upToNextOption, help: "Image IDs, one per app component (none: remove all apps).") var images: [String] = []
        @Option(name: .customLong("canary-percent"), help: "Stage it: this share (1–99) of the group's devices first.") var canaryPercent: Int?
        @Option(name: .customLong("canary-devices"), parsing: .upToNextOption, help: "Stage it: these devices of the group first.")
        var canaryDevices: [String] = []
        @Option(name: .customLong("soak-minutes"), help: "With a canary: minutes before the rest of the group gets it (default 60).")
        var soakMinutes: Int?
        @Option(name: .customLong("halt-threshold"), help: "With a canary: pause when its failure rate exceeds the previous images' by more than this many devices per 1,000 (default 50).")
        var haltThreshold: Int?

        func run() async throws {
            let ids = try images.map { text in
                guard let id = ImageID(text) else { throw ValidationError("'\(text)' is not an image ID (a UUID)") }
                return id
            }
            let canary = try canaryDevices.map { text in
                guard let id = DeviceID(text) else { throw ValidationError("'\(text)' is not a device ID (64 hex characters)") }
                return id
            }
            var rollout: RolloutRequest?
            if canaryPercent != nil || !canary.isEmpty {
                rollout = RolloutRequest(
                    canaryPercent: canaryPercent, canaryDevices: canary.isEmpty ? nil : canary, soakMinutes: soakMinutes,
                    haltThresholdPerThousand: haltThreshold)
            } else if soakMinutes != nil || haltThreshold != nil {
                throw ValidationError("--soak-minutes and --halt-threshold need --canary-percent or --canary-devices")
            }
            let deployment = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let group = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                return try await client.createDeployment(images: ids, group: group.id, tenant: tenant, rollout: rollout)
            }
            try global.emit(deployment) {
                "Created deployment \($0.id): \($0.images.isEmpty ? "no apps" : $0.images.map { "\($0.name) \($0.version)" }.joined(separator: ", "))."
                    + ($0.rollout.map { " Staged: \($0.canaryDevices.count) canary device(s) until \(date($0.soakUntil))." } ?? "")
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
                        + deployment.images.map { ("image", "\($0.imageId)  \($0.name) \($0.version) (security version \($0.securityVersion))") }
                        + rolloutLines(deployment.rollout))
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a staged rollout: devices outside the canary keep waiting (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The deployment ID.") var deployment: String
        @Option(help: "Why, recorded with the pause.") var reason: String?

        func run() async throws {
            guard let id = DeploymentID(deployment) else { throw ValidationError("'\(deployment)' is not a deployment ID (a UUID)") }
            let document = try await global.withClient { client in
                try await client.pauseDeployment(id, reason: reason, tenant: try await global.tenantID(client))
            }
            try global.emit(document) { "Paused the rollout of deployment \($0.id): \($0.rollout?.pauseReason ?? "")." }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a paused rollout (Contributor); failures before now no longer count against it.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The deployment ID.") var deployment: String

        func run() async throws {
            guard let id = DeploymentID(deployment) else { throw ValidationError("'\(deployment)' is not a deployment ID (a UUID)") }
            let document = try await global.withClient { client in try await client.resumeDeployment(id, tenant: try await global.tenantID(client)) }
            try global.emit(document) { "Resumed the rollout of deployment \($0.id): \($0.rollout?.state.rawValue ?? "")." }
        }
    }
}

/// The rollout of a staged deployment, as `deployment show` lists it.
func rolloutLines(_ rollout: Rollout?) -> [(String, String)] {
    guard let rollout else { return [] }
    var lines = [
        ("rollout", rollout.state.rawValue), ("canary devices", rollout.canaryDevices.map(\.hex).joined(separator: "\n" + String(repeating: " ", count: 17))),
        ("full rollout at", date(rollout.soakUntil)), ("halt threshold", "\(rollout.haltThresholdPerThousand) per 1000 above the previous images"),
        ("others keep", rollout.previousDeploymentId.map { "deployment \($0)" } ?? "their apps"),
    ]
    if let paused = rollout.pausedAt {
        lines.append(("paused", "\(date(paused)) by \(rollout.pausedBy ?? "?"): \(rollout.pauseReason ?? "")"))
    }
    return lines
}
