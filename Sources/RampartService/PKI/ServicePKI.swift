import Crypto
import Foundation
import RampartModel
import SwiftASN1
public import RampartPKI
import X509
import Synchronization

/// The Security Service's certificate authorities: one Root (20 years), one Intermediate
/// (10 years), and per tenant a Tenant CA (2 years) that is renewed 90 days before it
/// expires. The renewed CA starts issuing 45 days after it is created; until the old one
/// expires, the tenant's chain carries both.
public struct ServicePKI: Sendable {
    public let root: CertificateAuthority
    public let intermediate: CertificateAuthority
    let custody: KeyCustody
    /// Tenant CAs and signing keys already read, by row ID.
    let issuers = RowCache<Issuer>()
    let signingKeys = RowCache<SigningKey>()

    /// Loads the root and intermediate, creating them on first start.
    static func bootstrap(database: any Database, custody: KeyCustody, now: Date) async throws -> ServicePKI {
        if let loaded = try await load(database: database, custody: custody) { return loaded }
        let root = try CertificateAuthority.makeRoot(commonName: "Rampart Root CA", now: now)
        let intermediate = try root.issueSubordinate(
            commonName: "Rampart Intermediate CA", lifetime: .intermediate, maxPathLength: 1, now: now)
        do {
            try await database.transaction { db in
                try await store(root, kind: "root", tenant: nil, activatesAt: now, custody: custody, db: db, now: now)
                try await store(
                    intermediate, kind: "intermediate", tenant: nil, activatesAt: now, custody: custody, db: db, now: now)
            }
        } catch {
            // Another node created them first: theirs win.
            if let loaded = try await load(database: database, custody: custody) { return loaded }
            throw error
        }
        return ServicePKI(root: root, intermediate: intermediate, custody: custody)
    }

    private static func load(database: any Database, custody: KeyCustody) async throws -> ServicePKI? {
        let rows = try await database.read { db in
            try await db.query("SELECT * FROM certificate_authorities WHERE tenant_id IS NULL")
        }
        guard let rootRow = rows.first(where: { (try? $0.text("kind")) == "root" }),
            let intermediateRow = rows.first(where: { (try? $0.text("kind")) == "intermediate" })
        else { return nil }
        return ServicePKI(
            root: try authority(from: rootRow, custody: custody),
            intermediate: try authority(from: intermediateRow, custody: custody),
            custody: custody)
    }

    /// Creates a tenant's first CA, inside the caller's transaction.
    func createTenantCA(for tenant: TenantDocument, db: any SQLExecutor, now: Date) async throws {
        let ca = try intermediate.issueSubordinate(
            commonName: SigningNames.tenantCA(tenant.id), organizationalUnit: tenant.name, lifetime: .tenantCA,
            maxPathLength: 0, now: now)
        try await Self.store(ca, kind: "tenant", tenant: tenant.id, activatesAt: now, custody: custody, db: db, now: now)
    }

    /// Renews every tenant CA whose newest certificate has fewer than 90 days left.
    /// Returns the tenants renewed. Safe to run on several nodes at once: each renewal
    /// re-checks inside its transaction.
    func rotateTenantCAs(database: any Database, now: Date) async throws -> [TenantID] {
        let tenants = try await database.read { db in try await db.tenants() }
        var renewed: [TenantID] = []
        for tenant in tenants {
            let didRenew = try await database.transaction { db in
                if database.engine == .postgres {
                    try await db.query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", .of(tenant.id))
                }
                let newest = try await db.query(
                    "SELECT MAX(not_after) AS latest FROM certificate_authorities WHERE tenant_id = $1", .of(tenant.id))
                let latest = try newest.first.flatMap { try $0.optionalDate("latest") } ?? .distantPast
                guard latest.timeIntervalSince(now) < Lifetime.tenantCARenewalWindow else { return false }
                let ca = try intermediate.issueSubordinate(
                    commonName: SigningNames.tenantCA(tenant.id), organizationalUnit: tenant.name, lifetime: .tenantCA,
                    maxPathLength: 0, now: now)
                try await Self.store(
                    ca, kind: "tenant", tenant: tenant.id, activatesAt: now.addingTimeInterval(Lifetime.tenantCAActivationDelay),
                    custody: custody, db: db, now: now)
                return true
            }
            if didRenew { renewed.append(tenant.id) }
        }
        return renewed
    }

    /// The tenant's unexpired CA certificates, newest first.
    func tenantCAs(_ tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> [(Certificate, Date)] {
        try await db.query(
            "SELECT certificate_pem, activates_at FROM certificate_authorities WHERE tenant_id = $1 AND not_after > $2 ORDER BY activates_at DESC",
            .of(tenant), .of(now)
        ).map { (try Certificate(pemEncoded: try $0.text("certificate_pem")), try $0.date("activates_at")) }
    }

    /// The CA that signs the tenant's device certificates now: the newest one already active.
    func issuingCA(for tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> CertificateAuthority {
        try await issuingChain(for: tenant, db: db, now: now).authority
    }

    /// The tenant's issuing CA with the PEM chain above a certificate it issues
    /// (tenant CA, intermediate), both read and encoded once per CA: each call reads only
    /// which CA it is, and the whole row only the first time.
    func issuingChain(for tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> Issuer {
        let rows = try await db.query(Self.issuingCAOfTenant, .of(tenant), .of(now))
        return try await issuer(id: try rows.first?.text("id"), tenant: tenant, db: db)
    }

    /// The one rule for which CA issues for a tenant — the newest active at `$2` — as a
    /// SELECT of its `id`, the tenant given by `tenant` (a placeholder or a column):
    /// `issuingChain` runs it alone, `claimForIssuing` as a subquery.
    private static let issuingCAOfTenant = issuingCASelect(tenant: "$1")

    static func issuingCASelect(tenant: String) -> String {
        """
        SELECT c.id FROM certificate_authorities c WHERE c.tenant_id = \(tenant) AND c.activates_at <= $2 AND c.not_after > $2
        ORDER BY c.activates_at DESC LIMIT 1
        """
    }

    /// The issuing CA with row ID `id` (of `tenant`), read and encoded once.
    func issuer(id: String?, tenant: TenantID, db: any SQLExecutor) async throws -> Issuer {
        guard let id else { throw ServiceError(500, "tenant_ca_missing", "tenant \(tenant) has no active CA") }
        if let cached = issuers.value(id) { return cached }
        guard let row = try await db.query("SELECT * FROM certificate_authorities WHERE id = $1", .text(id)).first else {
            throw ServiceError(500, "tenant_ca_missing", "tenant \(tenant)'s CA \(id) went away")
        }
        let authority = try Self.authority(from: row, custody: custody)
        let issuer = Issuer(
            authority: authority, chainPEM: [authority.certificate.pemString, intermediate.certificate.pemString])
        issuers.insert(issuer, id: id)
        return issuer
    }

    /// The PEM chain relying parties install: tenant CA(s), intermediate, root.
    func chainPEM(for tenant: TenantID, db: any SQLExecutor, now: Date) async throws -> String {
        let tenantCertificates = try await tenantCAs(tenant, db: db, now: now).map(\.0)
        return (tenantCertificates + [intermediate.certificate, root.certificate]).map(\.pemString).joined()
    }

    private static func store(
        _ ca: CertificateAuthority, kind: String, tenant: TenantID?, activatesAt: Date, custody: KeyCustody,
        db: any SQLExecutor, now: Date
    ) async throws {
        let id = UUID().uuidString.lowercased()
        let sealed = try custody.keep(ca.privateKeyPEM, id: id)
        try await db.query(
            """
            INSERT INTO certificate_authorities (id, kind, tenant_id, certificate_pem, sealed_key, not_before, not_after, activates_at, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            .text(id), .text(kind), tenant.map { .of($0) } ?? .null, .text(ca.certificate.pemString), sealed,
            .of(ca.certificate.notValidBefore), .of(ca.certificate.notValidAfter), .of(activatesAt), .of(now))
    }

    private static func authority(from row: SQLRow, custody: KeyCustody) throws -> CertificateAuthority {
        try CertificateAuthority(certificatePEM: try row.text("certificate_pem"), privateKeyPEM: try custody.keyPEM(of: row))
    }
}


/// A tenant's issuing CA with the PEM chain above a certificate it issues.
///
/// A class: an attestation takes one from the cache, and a retain is all that costs.
final class Issuer: Sendable {
    let authority: CertificateAuthority
    /// PEM: the CA's certificate, then the intermediate's.
    let chainPEM: [String]

    init(authority: CertificateAuthority, chainPEM: [String]) {
        self.authority = authority
        self.chainPEM = chainPEM
    }
}

/// Keys and certificates parsed once (and keys read from their file or unsealed) per
/// database row, instead of on every use. Rows of CAs and signing keys never change once
/// written — rotation adds a row — so an entry never goes stale.
final class RowCache<Value: Sendable>: Sendable {
    private let entries = Mutex<[String: Value]>([:])

    func value(_ id: String) -> Value? { entries.withLock { $0[id] } }
    func insert(_ value: Value, id: String) { entries.withLock { $0[id] = value } }
}
