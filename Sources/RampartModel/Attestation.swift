public import Foundation

// Device Authentication and Attestation (DAA): the documents a device and the
// Security Service exchange. The device asks for a nonce, signs evidence that includes
// it, and gets a 24-hour client certificate or a refusal that says why.

/// `POST /v1/attestation/challenge`: the device names itself.
public struct AttestationChallengeRequest: APIRequestBody {
    public static let fields: Set<String> = ["deviceId"]
    public var deviceId: DeviceID
    public init(deviceId: DeviceID) { self.deviceId = deviceId }
}

/// A single-use nonce, valid for 60 seconds.
public struct AttestationChallenge: Codable, Sendable, Equatable {
    /// 32 random bytes, base64.
    public var nonce: String
    public var expiresAt: Date
    public init(nonce: String, expiresAt: Date) {
        self.nonce = nonce
        self.expiresAt = expiresAt
    }
}

/// One measured component: what the runtime measured before running it.
public struct MeasuredComponent: Codable, Sendable, Equatable {
    public var name: String
    /// SHA-256, lowercase hex.
    public var sha256: String
    public init(name: String, sha256: String) {
        self.name = name
        self.sha256 = sha256
    }
}

/// What the device claims about itself. Signed as the exact bytes sent, so the service
/// never has to re-serialise it to check the signature.
public struct AttestationPayload: Codable, Sendable, Equatable {
    public var deviceId: DeviceID
    /// The challenge's nonce, base64.
    public var nonce: String
    public var softwareVersion: String
    /// The measurement log, in launch order, the runtime (`rampartd`) first.
    public var measurements: [MeasuredComponent]
    /// Anti-rollback counters by name.
    public var counters: [String: UInt64]
    /// The public key the 24-hour client certificate is to certify: DER SubjectPublicKeyInfo
    /// (P-256), base64. A fresh key for each attestation, held by the runtime for mutual TLS;
    /// the identity keys never leave the security processor.
    public var clientKey: String

    public init(
        deviceId: DeviceID, nonce: String, softwareVersion: String, measurements: [MeasuredComponent],
        counters: [String: UInt64], clientKey: String
    ) {
        self.deviceId = deviceId
        self.nonce = nonce
        self.softwareVersion = softwareVersion
        self.measurements = measurements
        self.counters = counters
        self.clientKey = clientKey
    }
}

/// `POST /v1/attestation/evidence`.
///
/// - Software DICE: `signature` is by the Alias key over `payload`'s bytes, and
///   `certificateChain` holds the Alias certificate, which the device's registered DeviceID
///   key signed at boot with the runtime measurement in its DiceTcbInfo.
/// - TPM 2.0: `quote` is a TPM2_Quote of the measured-launch PCR with SHA-256(`payload`'s
///   bytes) as qualifying data, and `signature` is the attestation key's signature over it.
public struct AttestationEvidence: APIRequestBody {
    public static let fields: Set<String> = ["payload", "signature", "certificateChain", "quote"]
    /// The JSON of an ``AttestationPayload``, base64.
    public var payload: String
    /// DER ECDSA P-256 signature, base64: over `payload` (DICE) or over `quote` (TPM).
    public var signature: String
    /// PEM certificates, leaf first (DICE: the Alias certificate; TPM: none).
    public var certificateChain: [String]
    /// TPM only: the marshalled TPMS_ATTEST the TPM signed, base64.
    public var quote: String?

    public init(payload: String, signature: String, certificateChain: [String], quote: String? = nil) {
        self.payload = payload
        self.signature = signature
        self.certificateChain = certificateChain
        self.quote = quote
    }
}

/// A successful attestation: the device's client certificate for mutual TLS.
public struct AttestationResult: Codable, Sendable, Equatable {
    public var deviceId: DeviceID
    public var tenantId: TenantID
    /// The 24-hour client certificate, PEM, then its issuing chain.
    public var certificateChain: [String]
    public var expiresAt: Date
    public var softwareVersion: String
    /// SHA-256 over the concatenated measurement digests, hex.
    public var measurementDigest: String
    /// Set on a recovery certificate (asked for with `purpose=recovery`): why the system
    /// software was refused. Such a certificate lasts an hour and opens only the update routes.
    public var recovery: String?

    public init(
        deviceId: DeviceID, tenantId: TenantID, certificateChain: [String], expiresAt: Date, softwareVersion: String,
        measurementDigest: String, recovery: String? = nil
    ) {
        self.recovery = recovery
        self.deviceId = deviceId
        self.tenantId = tenantId
        self.certificateChain = certificateChain
        self.expiresAt = expiresAt
        self.softwareVersion = softwareVersion
        self.measurementDigest = measurementDigest
    }
}

/// What the service sees of a device calling with its client certificate.
public struct DeviceWhoAmI: Codable, Sendable, Equatable {
    public var deviceId: DeviceID
    public var tenantId: TenantID
    public init(deviceId: DeviceID, tenantId: TenantID) {
        self.deviceId = deviceId
        self.tenantId = tenantId
    }
}

/// The TPM PCR (SHA-256 bank) a device's measured launch extends and quotes: 23, the
/// application-support PCR a process may reset. Device and verifier must agree on it.
public enum MeasuredLaunch {
    public static let pcr = 23
}

/// Which security processor holds a device's identity.
public enum SecurityProcessorKind: String, Codable, Sendable, CaseIterable {
    /// A TCG DICE engine in software, rooted in a Unique Device Secret file.
    case softwareDICE = "software-dice"
    /// A TPM 2.0, through libtss2.
    case tpm2
}

/// What the factory hands over with a device, and what `rampart device claim` takes: the
/// device's identity key endorsed by its manufacturer, so the service can tell a genuine
/// device from a made-up ID.
public struct ProvisioningRecord: Codable, Sendable, Equatable {
    public var deviceId: DeviceID
    public var securityProcessor: SecurityProcessorKind
    /// PEM. The certificate of the identity key (the DICE DeviceID key, or the TPM's
    /// attestation key), signed by a manufacturer CA. Its key hashes to `deviceId`.
    public var identityCertificate: String
    /// PEM. TPM only: the endorsement-key certificate the TPM's maker stored in the TPM.
    public var endorsementKeyCertificate: String?

    public init(
        deviceId: DeviceID, securityProcessor: SecurityProcessorKind, identityCertificate: String,
        endorsementKeyCertificate: String? = nil
    ) {
        self.deviceId = deviceId
        self.securityProcessor = securityProcessor
        self.identityCertificate = identityCertificate
        self.endorsementKeyCertificate = endorsementKeyCertificate
    }
}

/// A system-software release the service trusts: the reference value a device's runtime
/// measurement must match to be attested.
public struct SystemSoftwareRelease: Codable, Sendable, Equatable {
    public var version: String
    /// SHA-256 of the runtime executable, lowercase hex.
    public var measurement: String
    public var feed: OSFeed
    /// Anti-rollback: a device never accepts a release with a lower one.
    public var securityVersion: Int
    public var publishedAt: Date
    /// Set when an operator revoked the release; devices running it are refused and told to update.
    public var revokedAt: Date?
    public var revocationReason: String?
    /// The signed package devices install, when the operator published one; without it the
    /// release is a reference value only (attestation accepts it, updates cannot deliver it).
    public var imageId: ImageID?

    public init(
        version: String, measurement: String, feed: OSFeed, securityVersion: Int, publishedAt: Date,
        revokedAt: Date? = nil, revocationReason: String? = nil, imageId: ImageID? = nil
    ) {
        self.imageId = imageId
        self.version = version
        self.measurement = measurement
        self.feed = feed
        self.securityVersion = securityVersion
        self.publishedAt = publishedAt
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
    }
}

/// `POST /v1/os/releases` (service operator).
public struct PublishReleaseRequest: APIRequestBody {
    public static let fields: Set<String> = ["version", "measurement", "feed", "securityVersion"]
    public var version: String
    public var measurement: String
    public var feed: OSFeed
    public var securityVersion: Int
    public init(version: String, measurement: String, feed: OSFeed = .retail, securityVersion: Int = 1) {
        self.version = version
        self.measurement = measurement
        self.feed = feed
        self.securityVersion = securityVersion
    }
}

/// `POST /v1/os/releases/{version}/revoke` (service operator).
public struct RevokeReleaseRequest: APIRequestBody {
    public static let fields: Set<String> = ["reason"]
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// The anti-rollback counters a device reports in its evidence, by name.
///
/// The named ones are reported in every attestation; each app component has its own, which
/// holds the highest security version of it the device committed.
public struct MonotonicCounter: RawRepresentable, Codable, Sendable, Hashable {
    public let rawValue: String

    /// A counter by name: `system-software`, `applications` or `app:<component UUID>`.
    public init?(rawValue: String) {
        guard rawValue == "system-software" || rawValue == "applications"
            || (rawValue.hasPrefix("app:") && ComponentID(String(rawValue.dropFirst(4))) != nil)
        else { return nil }
        self.rawValue = rawValue
    }

    /// The security version of the newest system software installed.
    public static let systemSoftware = MonotonicCounter(rawValue: "system-software")!
    /// The security version floor for applications (reserved).
    public static let applications = MonotonicCounter(rawValue: "applications")!
    /// The counters every evidence reports.
    public static let allCases = [systemSoftware, applications]

    /// The highest committed security version of one app component.
    public static func component(_ id: ComponentID) -> MonotonicCounter { MonotonicCounter(rawValue: "app:\(id)")! }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let counter = MonotonicCounter(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text.prefix(60))' is not a counter name")
        }
        self = counter
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Refusal codes after which a device must update its system software before it can
/// attest again. It may still check for updates, so it can recover.
public enum UpdateRequired {
    public static let codes: Set<String> = ["software_unknown", "software_revoked", "software_rolled_back"]
}
