import ArgumentParser
import Foundation
import RampartModel

struct DeviceCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Claim devices into the tenant, list, show, move between device groups, release; development mode.",
        subcommands: [
            Claim.self, List.self, Show.self, ShowDeploymentStatus.self, Update.self, Release.self, EnableDevelopment.self,
            EnableCloudTest.self, Sideload.self, DeviceApp.self,
        ]
    )

    struct Claim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Claim a device into the tenant by its provisioning record (Contributor).",
            discussion: """
                The record is what `rampartd provision` wrote (provisioning-record.json): the device's \
                identity certificate from its manufacturer, and for a TPM its endorsement-key \
                certificate. The service refuses a record that does not chain to a manufacturer CA \
                it trusts. A device claimed by another tenant cannot be claimed until that \
                tenant's Administrator releases it.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "The device's provisioning record (JSON).") var record: String
        @Option(name: .customLong("device-group"), help: "Device group ID, or name with --product.") var deviceGroup: String?
        @Option(help: "Product ID or name, to find --device-group by name.") var product: String?

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: record) else { throw CLIError("cannot read \(record)") }
            let provisioning: ProvisioningRecord
            do {
                provisioning = try JSONDecoder.rampart.decode(ProvisioningRecord.self, from: data)
            } catch {
                throw CLIError("\(record) is not a provisioning record: \(error)")
            }
            let device = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let group = try await deviceGroup.asyncMap {
                    try await resolveDeviceGroup($0, product: product, tenant: tenant, client: client).id
                }
                return try await client.claimDevice(ClaimDeviceRequest(record: provisioning, deviceGroupId: group), tenant: tenant)
            }
            try global.emit(device) {
                "Claimed device \($0.id) (\($0.securityProcessor.rawValue))\($0.deviceGroupId.map { " into device group \($0)" } ?? "")."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's devices.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("device-group"), help: "Only this device group (ID, or name with --product).") var deviceGroup: String?
        @Option(help: "Product ID or name, to find --device-group by name.") var product: String?

        func run() async throws {
            let devices = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let group = try await deviceGroup.asyncMap {
                    try await resolveDeviceGroup($0, product: product, tenant: tenant, client: client).id
                }
                return try await client.devices(tenant: tenant, group: group)
            }
            try global.emit(devices) { devices in
                table(
                    ["DEVICE ID", "DEVICE GROUP", "CLAIMED"],
                    devices.map { [$0.id.description, $0.deviceGroupId?.description ?? "-", date($0.claimedAt)] })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one device.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device ID.") var deviceID: String

        func run() async throws {
            let id = try parseDeviceID(deviceID)
            let device = try await global.withClient { client in try await client.device(id, tenant: try await global.tenantID(client)) }
            try global.emit(device) { device in
                details([
                    ("device id", device.id.description), ("tenant", device.tenantId.description),
                    ("product", device.productId?.description ?? "-"),
                    ("device group", device.deviceGroupId?.description ?? "-"), ("claimed", date(device.claimedAt)),
                    ("last attestation", device.lastAttestation.map { "\(date($0.time)) \($0.result), software \($0.softwareVersion)" } ?? "never"),
                    ("certificate expires", device.lastAttestation.map { date($0.certificateExpiresAt) } ?? "-"),
                ])
            }
        }
    }

    struct ShowDeploymentStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show-deployment-status",
            abstract: "What a device should run, what it runs, and why they differ.",
            discussion: """
                "Should run" is the newest deliverable system software on the device group's feed and \
                the newest deployment's apps (unless the group's policy is no-app-updates). "Runs" is \
                the device's last report. When they differ, one reason code says why: \
                awaiting_contact, no_deliverable_system_software, rolled_back, download_failed, \
                security_version_too_low, verification_failed, downloading, awaiting_health_check, \
                development_mode, deferred, outside_maintenance_window, update_pending, no_device_group; and, with the \
                device in sync, no_deployment or update_policy.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device ID.") var deviceID: String

        func run() async throws {
            let id = try parseDeviceID(deviceID)
            let status = try await global.withClient { client in
                try await client.deploymentStatus(device: id, tenant: try await global.tenantID(client))
            }
            try global.emit(status) { status in
                let should = status.shouldRun
                let runs = status.runs
                func apps(_ list: [String]) -> String { list.isEmpty ? "none" : list.joined(separator: ", ") }
                return details([
                    ("device", status.deviceId.description),
                    ("should run", should.map { desired in
                        "system software \(desired.systemSoftware?.version ?? "(none deliverable)"); apps "
                            + (desired.appsManaged ? apps(desired.apps.map { "\($0.name) \($0.version)" }) : "unmanaged (kept as they are)")
                    } ?? "-"),
                    ("runs", runs.map { running in
                        "system software \(running.systemSoftware?.version ?? "?"); apps \(apps(running.apps.map { "\($0.componentId) \($0.version)" }))"
                    } ?? "unknown (no report yet)"),
                    ("state", status.state?.rawValue ?? "-"),
                    ("in sync", status.inSync ? "yes" : "no"),
                    ("reason", status.reason.map { reason in status.detail.map { "\(reason): \($0)" } ?? reason } ?? "-"),
                    ("last contact", status.lastContactAt.map(date) ?? "never"),
                    ("last report", status.reportedAt.map(date) ?? "never"),
                ])
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move a device to a device group (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device ID.") var deviceID: String
        @Option(name: .customLong("device-group"), help: "Device group ID, or name with --product.") var deviceGroup: String
        @Option(help: "Product ID or name, to find --device-group by name.") var product: String?

        func run() async throws {
            let id = try parseDeviceID(deviceID)
            let device = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let group = try await resolveDeviceGroup(deviceGroup, product: product, tenant: tenant, client: client)
                return try await client.updateDevice(id, UpdateDeviceRequest(deviceGroupId: group.id), tenant: tenant)
            }
            try global.emit(device) { "Device \($0.id) is in device group \($0.deviceGroupId?.description ?? "-")." }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a device from the tenant so it can be claimed again (Administrator).",
            discussion: "The audit log keeps the claim and the release.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Device ID.") var deviceID: String

        func run() async throws {
            let id = try parseDeviceID(deviceID)
            try await global.withClient { client in try await client.releaseDevice(id, tenant: try await global.tenantID(client)) }
            try global.done("Released device \(id).", ["deviceId": id.description])
        }
    }
}

func parseDeviceID(_ text: String) throws -> DeviceID {
    guard let id = DeviceID(text) else {
        throw ValidationError("'\(text)' is not a device ID: it must be 64 hexadecimal characters")
    }
    return id
}
