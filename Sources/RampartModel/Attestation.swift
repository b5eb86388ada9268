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
    /// The measurement log, the runtime (`rampartd`) first.
    public var measurements: [MeasuredComponent]
    /// Anti-rollback counters by name.
    public var counters: [String: UInt64]

    public init(
        deviceId: DeviceID, nonce: String, softwareVersion: String, measurements: [MeasuredComponent], counters: [String: UInt64]
    ) {
        self.deviceId = deviceId
        self.nonce = nonce
        self.softwareVersion = softwareVersion
        self.measurements = measurements
        self.counters = counters
    }
}

/// `POST /v1/attestation/evidence`.
public struct AttestationEvidence: APIRequestBody {
    public static let fields: Set<String> = ["payload", "signature", "certificateChain"]
    /// The JSON of an ``AttestationPayload``, base64.
    public var payload: String
    /// DER ECDSA P-256 signature over `payload`'s bytes, base64, by the key of the first certificate.
    public var signature: String
    /// PEM certificates, leaf first: the Alias certificate, then the DeviceID certificate
    /// the manufacturer endorsed.
    public var certificateChain: [String]

    public init(payload: String, signature: String, certificateChain: [String]) {
        self.payload = payload
        self.signature = signature
        self.certificateChain = certificateChain
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

    public init(
        deviceId: DeviceID, tenantId: TenantID, certificateChain: [String], expiresAt: Date, softwareVersion: String,
        measurementDigest: String
    ) {
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
