import Crypto
import Foundation
import RampartModel
import RampartPKI
import X509

/// What a signing key of the service signs.
enum SigningPurpose: String, Sendable {
    /// A tenant's app image packages; certified by the tenant's CA.
    case imageSigning = "image-signing"
    /// The system software the service operator publishes; certified by the intermediate.
    case systemSoftwareSigning = "system-software-signing"
    /// The four roles of a tenant's update repositories (TUF). Certified by the tenant's CA
    /// too, so a device can tell its tenant's update root from any other.
    case tufRoot = "tuf-root", tufTargets = "tuf-targets", tufSnapshot = "tuf-snapshot", tufTimestamp = "tuf-timestamp"

    func commonName(tenant: TenantID?) -> String {
        switch (self, tenant) {
        case (.imageSigning, let tenant?): SigningNames.imageSigning(tenant)
        case (.tufRoot, let tenant?): SigningNames.updateRoot(tenant)
        case (.tufTargets, let tenant?): "Rampart Update Targets \(tenant)"
        case (.tufSnapshot, let tenant?): "Rampart Update Snapshot \(tenant)"
        case (.tufTimestamp, let tenant?): "Rampart Update Timestamp \(tenant)"
        default: SigningNames.systemSoftwareSigning
        }
    }
}

/// A private key of the service that signs content rather than certificates, with the
/// chain a verifier needs.
struct SigningKey: Sendable {
    let id: String
    let privateKeyPEM: String
    /// PEM: the key's certificate, the CA that issued it, the intermediate (when that is not
    /// the issuer).
    let certificateChain: [String]
    let notAfter: Date
}

extension ServicePKI {
    /// A signing key is replaced once fewer than this many seconds of its certificate remain
    /// (less than a tenant CA's activation delay, so the replacement is certified by the
    /// tenant's newest CA).
    static let signingKeyRenewalWindow: TimeInterval = 30 * 24 * 3600

    /// The active key for `purpose` of `tenant` (nil: the service's own), inside the
    /// caller's transaction: created on first use (so existing tenants need no backfill),
    /// and retired and replaced by a new one when its certificate nears its end. Racing
    /// nodes converge on one key: a unique index admits one active key per owner and
    /// purpose, and the loser reads the winner's.
    ///
    /// TUF keys are never replaced this way (`replacingNearEnd: false`): their metadata names
    /// them, so changing one is a root rotation, not a renewal.
    func signingKey(
        _ purpose: SigningPurpose, tenant: TenantID?, db: any SQLExecutor, now: Date, replacingNearEnd: Bool = true
    ) async throws -> SigningKey {
        if let row = try await activeSigningKeyRow(purpose, tenant: tenant, db: db) {
            let key = try signingKey(from: row)
            if !replacingNearEnd || key.notAfter.timeIntervalSince(now) >= Self.signingKeyRenewalWindow { return key }
            try await db.query("UPDATE signing_keys SET retired_at = $1 WHERE id = $2", .of(now), .text(key.id))
        }
        let issuer = if let tenant {
            try await issuingChain(for: tenant, db: db, now: now)
        } else {
            Issuer(authority: intermediate, chainPEM: [intermediate.certificate.pemString])
        }
        let commonName = purpose.commonName(tenant: tenant)
        let privateKey = P256.Signing.PrivateKey()
        let certificate = try issuer.authority.issueSigningCertificate(
            commonName: commonName, publicKey: privateKey.publicKey, now: now)
        let id = UUID().uuidString.lowercased()
        let sealed = try custody.keep(privateKey.pemRepresentation, id: id)
        let inserted = try await db.query(
            """
            INSERT INTO signing_keys (id, tenant_id, purpose, certificate_chain, sealed_key, not_after, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id
            """,
            .text(id), tenant.map { .of($0) } ?? .null, .text(purpose.rawValue),
            .text(([certificate.pemString] + issuer.chainPEM).joined()), sealed, .of(certificate.notValidAfter), .of(now))
        if inserted.isEmpty {
            custody.discard(id: id)
            guard let row = try await activeSigningKeyRow(purpose, tenant: tenant, db: db) else {
                throw ServiceError(500, "signing_key_missing", "no \(purpose.rawValue) key could be created")
            }
            return try signingKey(from: row)
        }
        return SigningKey(
            id: id, privateKeyPEM: privateKey.pemRepresentation,
            certificateChain: [certificate.pemString] + issuer.chainPEM, notAfter: certificate.notValidAfter)
    }

    private func activeSigningKeyRow(_ purpose: SigningPurpose, tenant: TenantID?, db: any SQLExecutor) async throws -> SQLRow? {
        guard let tenant else {
            return try await db.query(
                "SELECT * FROM signing_keys WHERE tenant_id IS NULL AND purpose = $1 AND retired_at IS NULL", .text(purpose.rawValue)
            ).first
        }
        return try await db.query(
            "SELECT * FROM signing_keys WHERE tenant_id = $1 AND purpose = $2 AND retired_at IS NULL",
            .of(tenant), .text(purpose.rawValue)
        ).first
    }

    private func signingKey(from row: SQLRow) throws -> SigningKey {
        let id = try row.text("id")
        if let cached = signingKeys.value(id) { return cached }
        let chain = try certificates(fromPEMBundle: try row.text("certificate_chain")).map(\.pemString)
        let key = SigningKey(
            id: id, privateKeyPEM: try custody.keyPEM(of: row), certificateChain: chain, notAfter: try row.date("not_after"))
        signingKeys.insert(key, id: id)
        return key
    }
}
