import Foundation
import RampartModel

// Signed image packages: a row per image, the file's bytes in 1 MiB chunks.
extension SQLExecutor {
    static var blobChunkSize: Int { 1 << 20 }

    /// Inserts the image; false when the tenant has this component at this version already.
    func insertImage(_ image: ImageDocument) async throws -> Bool {
        try await query(
            """
            INSERT INTO images (id, tenant_id, kind, component_id, name, version, security_version, sha256, length, created_at, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING id
            """,
            .of(image.id), image.tenantId.map { .of($0) } ?? .null, .text(image.kind.rawValue), .of(image.componentId),
            .text(image.name), .text(image.version), .int(Int64(image.securityVersion)), .text(image.sha256),
            .int(Int64(image.length)), .of(image.createdAt), .text(image.createdBy)
        ).isEmpty == false
    }

    func images(in tenant: TenantID, component: ComponentID?) async throws -> [ImageDocument] {
        if let component {
            return try await query(
                "SELECT * FROM images WHERE tenant_id = $1 AND component_id = $2 ORDER BY created_at, id", .of(tenant),
                .of(component)
            ).map(ImageDocument.init(row:))
        }
        return try await query("SELECT * FROM images WHERE tenant_id = $1 ORDER BY created_at, id", .of(tenant))
            .map(ImageDocument.init(row:))
    }

    func image(_ id: ImageID, in tenant: TenantID) async throws -> ImageDocument? {
        try await query("SELECT * FROM images WHERE id = $1 AND tenant_id = $2", .of(id), .of(tenant)).first
            .map(ImageDocument.init(row:))
    }

    func imageExists(tenant: TenantID, component: ComponentID, version: String) async throws -> Bool {
        try await query(
            "SELECT id FROM images WHERE tenant_id = $1 AND component_id = $2 AND version = $3", .of(tenant), .of(component),
            .text(version)
        ).isEmpty == false
    }

    /// Stores `bytes` under their SHA-256 (identical bytes are stored once).
    func storeBlob(_ bytes: Data, sha256: String) async throws {
        var seq: Int64 = 0
        var start = bytes.startIndex
        repeat {
            let end = min(start + Self.blobChunkSize, bytes.endIndex)
            try await query(
                "INSERT INTO blob_chunks (sha256, seq, bytes) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", .text(sha256),
                .int(seq), .blob([UInt8](bytes[start..<end])))
            seq += 1
            start = end
        } while start < bytes.endIndex
    }

    /// The bytes stored under `sha256`, or nil.
    func blob(sha256: String) async throws -> Data? {
        let rows = try await query("SELECT bytes FROM blob_chunks WHERE sha256 = $1 ORDER BY seq", .text(sha256))
        guard !rows.isEmpty else { return nil }
        var data = Data()
        for row in rows { data.append(contentsOf: try row.blob("bytes") ?? []) }
        return data
    }
}

extension ImageDocument {
    init(row: SQLRow) throws {
        guard let kind = ImageKind(rawValue: try row.text("kind")), let id = ImageID(try row.text("id")),
            let component = ComponentID(try row.text("component_id"))
        else { throw DatabaseError(description: "images row is malformed") }
        self.init(
            id: id, tenantId: try row.optionalText("tenant_id").flatMap(TenantID.init), kind: kind, componentId: component,
            name: try row.text("name"), version: try row.text("version"),
            securityVersion: Int(try row.int("security_version")), sha256: try row.text("sha256"),
            length: Int(try row.int("length")), createdAt: try row.date("created_at"), createdBy: try row.text("created_by"))
    }
}
