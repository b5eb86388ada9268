import ArgumentParser
import Foundation
import RampartModel

struct ErrorCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "errors",
        abstract: "Failures devices reported, correlated across the fleet (any tenant member).",
        discussion: """
            Devices report every app crash (with its wasm backtrace), non-zero exit, memory or CPU \
            kill, crash loop, denial storm, failed or rolled-back update, refused attestation and \
            runtime crash. The service buckets them by a signature — event class, category, \
            component, image, the reason without addresses and the top three frames \
            (rampart-bucket-v1) — and keeps them 14 days unless configured otherwise \
            (rampart-server --error-retention-days).
            """,
        subcommands: [List.self, Show.self, Export.self]
    )

    struct Filters: ParsableArguments {
        @Option(help: "Only reports since then: a duration back from now (30m, 24h, 7d) or an ISO 8601 time (to the minute).")
        var since: String?
        @Option(name: .customLong("device-group"), help: "Only from this device group (ID, or name).") var deviceGroup: String?
        @Option(help: "Product ID or name (when the group name is not unique).") var product: String?
        @Option(help: "Only about this image ID.") var image: String?

        func resolve(_ global: GlobalOptions, _ client: APIClient, tenant: TenantID) async throws -> (DeviceGroupID?, ImageID?) {
            let image = try image.map { text in
                guard let id = ImageID(text) else { throw ValidationError("'\(text)' is not an image ID (a UUID)") }
                return id
            }
            let group = try await deviceGroup.asyncMap { try await resolveDeviceGroup($0, product: product, tenant: tenant, client: client).id }
            return (group, image)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List error buckets, most events first.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var filters: Filters

        func run() async throws {
            let buckets = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let (group, image) = try await filters.resolve(global, client, tenant: tenant)
                return try await client.errorBuckets(tenant: tenant, since: filters.since, group: group, image: image)
            }
            try global.emit(buckets) { buckets in
                buckets.isEmpty ? "No failures reported\(filters.since.map { " since \($0)" } ?? "")." : table(
                    ["BUCKET", "CATEGORY", "EVENTS", "DEVICES", "PER 1000", "LAST SEEN", "REASON", "TOP FRAME"],
                    buckets.map {
                        [String($0.id.prefix(12)), "\($0.eventClass.rawValue)/\($0.category.rawValue)", "\($0.count)", "\($0.affectedDevices)",
                         $0.crashRatePerThousand.map { String(format: "%.1f", $0) } ?? "-", date($0.lastSeen), String($0.reason.prefix(40)),
                         $0.frames.first ?? "-"]
                    })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one bucket with sample reports (a unique prefix of its ID will do).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The bucket ID, or a unique prefix of it (as `errors list` shows).") var bucket: String

        func run() async throws {
            let prefix = bucket.lowercased()
            guard !prefix.isEmpty, prefix.allSatisfy(\.isHexDigit) else { throw ValidationError("'\(bucket)' is not a bucket ID (hex)") }
            let found = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                var id = prefix
                if prefix.count < 64 {
                    let matches = try await client.errorBuckets(tenant: tenant).filter { $0.id.hasPrefix(prefix) }
                    guard matches.count == 1 else {
                        throw CLIError(matches.isEmpty ? "no bucket starts with \(prefix)" : "\(matches.count) buckets start with \(prefix); give more of the ID")
                    }
                    id = matches[0].id
                }
                return try await client.errorBucket(id, tenant: tenant)
            }
            try global.emit(found) { bucket in
                details(
                    [("bucket", bucket.id), ("signature", bucket.algorithm), ("class / category", "\(bucket.eventClass.rawValue) / \(bucket.category.rawValue)"),
                     ("component", bucket.componentId?.description ?? "-"), ("image", bucket.imageId?.description ?? "-"),
                     ("reason", bucket.reason), ("top frames", bucket.frames.isEmpty ? "-" : bucket.frames.joined(separator: " ← ")),
                     ("events", "\(bucket.count) in \(bucket.reports) reports from \(bucket.affectedDevices) devices"),
                     ("crash rate", bucket.crashRatePerThousand.map { String(format: "%.1f per 1000 devices running the image", $0) } ?? "-"),
                     ("first / last seen", "\(date(bucket.firstSeen)) / \(date(bucket.lastSeen))")]
                        + (bucket.samples ?? []).map { ("sample", "\(date($0.time))  \($0.deviceId.hex.prefix(16))…  ×\($0.count)  \($0.details)") })
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export reports, one row per report.",
            discussion: """
                Columns: report_id, bucket_id, time (ISO 8601, UTC), device_id, event_type, event_class, \
                category, component_id, image_id, system_software_version, count, frames (innermost \
                first, separated by ' | '), details. RFC 4180 quoting; a field starting with = + - @ \
                gets a leading ' so spreadsheets do not evaluate it. At most 100,000 rows, newest first.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var filters: Filters
        @Flag(help: "Write CSV (the only format; required so the output is never a surprise).") var csv = false
        @Option(help: "Write to this file instead of standard output.") var out: String?

        func run() async throws {
            guard csv else { throw ValidationError("say --csv: the export is CSV") }
            let text = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                let (group, image) = try await filters.resolve(global, client, tenant: tenant)
                return try await client.exportErrors(tenant: tenant, since: filters.since, group: group, image: image)
            }
            if let out {
                try text.write(toFile: out, atomically: true, encoding: .utf8)
                struct Written: Encodable { let file: String, rows: Int }
                let written = Written(file: out, rows: max(text.components(separatedBy: "\r\n").count - 2, 0))
                try global.emit(written) { "Wrote \($0.rows) report(s) to \($0.file)." }
            } else {
                print(text, terminator: "")
            }
        }
    }
}
