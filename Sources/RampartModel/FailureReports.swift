public import Foundation

/// One failure (or planned event) on a device, as the device reports it. The report ID
/// makes uploads idempotent: a retransmitted report is stored and counted once.
public struct FailureReport: Codable, Sendable, Equatable {
    public enum EventType: String, Codable, Sendable, CaseIterable {
        /// An update, a restart somebody asked for.
        case planned
        /// A failure.
        case unplanned
    }

    public enum EventClass: String, Codable, Sendable, CaseIterable {
        case os
        case application
    }

    /// What happened, as a stable code.
    public enum Category: String, Codable, Sendable, CaseIterable {
        /// An app trapped (with its wasm backtrace in `frames`).
        case crash
        /// An app exited with a non-zero status.
        case exit
        /// An app was stopped at its memory limit.
        case oom
        /// An app ran past its CPU budget without yielding.
        case watchdog
        /// An app failed five times in ten minutes and is left down.
        case crashLoop = "crash-loop"
        /// An app called many host functions its manifest does not grant.
        case denialStorm = "denial-storm"
        /// An update could not be downloaded, verified or installed.
        case updateFailed = "update-failed"
        /// An update was installed, found unhealthy and rolled back.
        case updateRolledBack = "update-rolled-back"
        /// The service refused to attest the device.
        case attestationFailed = "attestation-failed"
        /// A part of the device runtime (the security monitor) ended unexpectedly.
        case runtimeCrash = "runtime-crash"
        /// The device's report queue was full and dropped this many (`count`) reports.
        case reportsDropped = "reports-dropped"
        /// An update installed and confirmed (planned).
        case update
    }

    public var reportId: UUID
    public var deviceId: DeviceID
    /// When it happened (the first occurrence when `count` > 1).
    public var time: Date
    public var eventType: EventType
    public var eventClass: EventClass
    public var category: Category
    public var componentId: ComponentID?
    public var imageId: ImageID?
    public var systemSoftwareVersion: String
    /// The innermost frames first: function names from the module's name section, else
    /// `wasm function[N]`. At most 32.
    public var frames: [String]
    /// For people: the trap message, the exit status, the refusal. At most 1,024 characters.
    public var details: String
    /// How many identical events this report stands for (the device aggregates within a minute).
    public var count: Int

    public init(
        reportId: UUID = UUID(), deviceId: DeviceID, time: Date, eventType: EventType, eventClass: EventClass, category: Category,
        componentId: ComponentID? = nil, imageId: ImageID? = nil, systemSoftwareVersion: String, frames: [String] = [],
        details: String, count: Int = 1
    ) {
        self.reportId = reportId
        self.deviceId = deviceId
        self.time = time
        self.eventType = eventType
        self.eventClass = eventClass
        self.category = category
        self.componentId = componentId
        self.imageId = imageId
        self.systemSoftwareVersion = systemSoftwareVersion
        self.frames = frames
        self.details = details
        self.count = count
    }

    public static let maxFrames = 32
    public static let maxFrameLength = 256
    public static let maxDetailsLength = 1024
}

/// What a device uploads at once: 1–100 reports.
public struct FailureReportBatch: APIRequestBody {
    public static let fields: Set<String> = ["reports"]
    public static let maxReports = 100
    public var reports: [FailureReport]
    public init(reports: [FailureReport]) { self.reports = reports }
}

/// The service's answer to an upload.
public struct FailureReportReceipt: Codable, Sendable, Equatable {
    /// Reports stored now.
    public var accepted: Int
    /// Reports it had already (retransmissions), not counted again.
    public var duplicates: Int
    public init(accepted: Int, duplicates: Int) {
        self.accepted = accepted
        self.duplicates = duplicates
    }
}

/// Reports with the same signature, across the fleet.
public struct ErrorBucket: Codable, Sendable, Equatable {
    /// The signature: hex SHA-256 of the bucketing inputs (see `ErrorBucket.algorithm`).
    public var id: String
    public var algorithm: String
    public var eventClass: FailureReport.EventClass
    public var category: FailureReport.Category
    public var componentId: ComponentID?
    public var imageId: ImageID?
    /// The normalised reason and top frames the signature covers.
    public var reason: String
    public var frames: [String]
    /// Events (the sum of the reports' counts).
    public var count: Int
    public var reports: Int
    public var affectedDevices: Int
    public var firstSeen: Date
    public var lastSeen: Date
    /// Devices with this failure per 1,000 devices that report running the image; nil
    /// without an image or when no device reports running it.
    public var crashRatePerThousand: Double?
    /// Up to five reports, newest first (`errors show`).
    public var samples: [FailureReport]?

    public init(
        id: String, algorithm: String, eventClass: FailureReport.EventClass, category: FailureReport.Category, componentId: ComponentID?,
        imageId: ImageID?, reason: String, frames: [String], count: Int, reports: Int, affectedDevices: Int, firstSeen: Date,
        lastSeen: Date, crashRatePerThousand: Double?, samples: [FailureReport]? = nil
    ) {
        self.id = id
        self.algorithm = algorithm
        self.eventClass = eventClass
        self.category = category
        self.componentId = componentId
        self.imageId = imageId
        self.reason = reason
        self.frames = frames
        self.count = count
        self.reports = reports
        self.affectedDevices = affectedDevices
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.crashRatePerThousand = crashRatePerThousand
        self.samples = samples
    }
}

/// How reports are bucketed — versioned, so a change makes new buckets instead of silently
/// splitting old ones. Version 1 (`rampart-bucket-v1`) covers, one per line: the event
/// class, the category, the component ID, the image ID (empty when absent), the reason and
/// the top three frames. The reason is the first line of `details` with hexadecimal
/// addresses (`0x…`) replaced by `0x?` and runs of white space collapsed; a frame is trimmed,
/// with a trailing `.llvm.<digits>` or `.<digits>` clone suffix removed. The bucket ID is the
/// hex SHA-256 of those lines joined by `\n` (the service computes it; devices aggregate by
/// the same lines).
public enum FailureSignature {
    public static let algorithm = "rampart-bucket-v1"
    public static let topFrames = 3

    public static func reason(_ details: String) -> String {
        let first = details.prefix { $0 != "\n" }
        var words: [String] = []
        for word in first.split(whereSeparator: \.isWhitespace) {
            var text = String(word)
            if let range = text.range(of: "0x") {
                let tail = text[range.upperBound...]
                let digits = tail.prefix { $0.isHexDigit }
                if !digits.isEmpty { text = text[..<range.upperBound] + "?" + tail.dropFirst(digits.count) }
            }
            words.append(text)
        }
        return words.joined(separator: " ")
    }

    public static func frame(_ frame: String) -> String {
        var name = frame.trimmingCharacters(in: .whitespaces)
        for marker in [".llvm.", "."] {
            if let range = name.range(of: marker, options: .backwards), range.lowerBound > name.startIndex,
                !name[range.upperBound...].isEmpty, name[range.upperBound...].allSatisfy(\.isNumber)
            {
                name = String(name[..<range.lowerBound])
                break
            }
        }
        return name
    }

    public static func frames(_ report: FailureReport) -> [String] {
        report.frames.prefix(topFrames).map(frame)
    }

    /// The lines the bucket ID is the SHA-256 of.
    public static func inputs(_ report: FailureReport) -> String {
        ([
            report.eventClass.rawValue, report.category.rawValue, report.componentId?.description ?? "",
            report.imageId?.description ?? "", reason(report.details),
        ] + frames(report)).joined(separator: "\n")
    }
}
