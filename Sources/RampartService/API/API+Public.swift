import Foundation
import Hummingbird
import Prometheus
import RampartModel

extension API {
    /// Routes that need no token: liveness, metrics, the API description, and the root
    /// certificate (public by nature; `rampart login --fingerprint` pins it).
    var publicEndpoints: [Endpoint] {
        [
            Endpoint(.get, "/healthz") { _, _ in
                _ = try await database.read { db in try await db.query("SELECT 1 AS ok") }
                return try .json(["status": "ok"])
            },
            Endpoint(.get, "/metrics") { _, _ in
                .text(ServiceMetrics.registry.emitToString(), contentType: "text/plain; version=0.0.4")
            },
            Endpoint(.get, "/openapi.json") { _, _ in
                .text(try OpenAPIDocument.text(), contentType: "application/json")
            },
            Endpoint(.get, "/v1/pki/root") { _, _ in
                .text(pki.root.certificate.pemString, contentType: "application/x-pem-file")
            },
        ]
    }

    var caEndpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/tenants/{tenantId}/ca/chain") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let pem = try await database.read { db in try await pki.chainPEM(for: tenant, db: db, now: now()) }
                return .text(pem, contentType: "application/x-pem-file")
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/ca") { _, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let now = now()
                let cas = try await database.read { db in try await pki.tenantCAs(tenant, db: db, now: now) }
                let documents =
                    cas.map { CertificateAuthorityDocument(certificate: $0.0, kind: "tenant", activatesAt: $0.1) }
                    + [
                        CertificateAuthorityDocument(
                            certificate: pki.intermediate.certificate, kind: "intermediate",
                            activatesAt: pki.intermediate.certificate.notValidBefore),
                        CertificateAuthorityDocument(
                            certificate: pki.root.certificate, kind: "root", activatesAt: pki.root.certificate.notValidBefore),
                    ]
                return try .json(ListDocument(items: documents))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/audit") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, oneOf: [.administrator, .reader])
                let limitText = request.uri.queryParameters.get("limit") ?? "100"
                guard let limit = Int(limitText), (1...10_000).contains(limit) else {
                    throw ServiceError.invalidField("limit", "must be a number from 1 to 10000")
                }
                let entries = try await database.read { db in try await db.auditEntries(tenant: tenant, limit: limit) }
                return try .json(ListDocument(items: entries))
            },
        ]
    }
}

import X509
import RampartPKI

extension CertificateAuthorityDocument {
    init(certificate: Certificate, kind: String, activatesAt: Date) {
        self.init(
            kind: kind, subject: certificate.subject.description, serialNumber: certificate.serialHex,
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter, activatesAt: activatesAt,
            sha256Fingerprint: certificate.sha256Fingerprint)
    }
}

/// The OpenAPI 3 description of this API, kept in the repository as `openapi.json`.
enum OpenAPIDocument {
    static func text() throws -> String {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw ServiceError(500, "openapi_missing", "openapi.json is not bundled with this build")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}
