import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RampartImage
import RampartModel

extension API {
    /// App images: uploaded unsigned by a Contributor, checked, signed with the tenant's
    /// image-signing key and kept immutable. No route changes or deletes an image.
    var imageEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/tenants/{tenantId}/images", action: "image.add") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                let user = try context.authorize(tenant, .contributor)
                let package = try ImagePackage(
                    uploadedApp: try await request.collectPackage(maxPayload: imageLimits.app, limits: imageLimits), limits: imageLimits)
                let now = now()
                let image = try await database.transaction { db in
                    let metadata = package.metadata
                    guard try await !db.imageExists(tenant: tenant, component: metadata.componentId, version: metadata.version)
                    else { throw Self.imageExists(metadata) }
                    let image = try await storeSigned(package, tenant: tenant, createdBy: user.name, db: db, now: now)
                    try await db.audit(context, target: "image/\(image.id)", at: now)
                    return image
                }
                return try .json(image, status: .created)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/images") { request, context in
                let tenant = try context.id("tenantId", as: TenantID.self)
                _ = try context.authorize(tenant, .reader)
                let component = try request.queryID("componentId", as: ComponentID.self)
                return try .json(ListDocument(items: try await database.read { db in try await db.images(in: tenant, component: component) }))
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/images/{imageId}") { _, context in
                let (_, image) = try await image(context)
                return try .json(image)
            },
            Endpoint(.get, "/v1/tenants/{tenantId}/images/{imageId}/package") { _, context in
                let (_, image) = try await image(context)
                guard let bytes = try await database.read({ db in try await db.blob(sha256: image.sha256) }) else {
                    throw ServiceError(500, "image_blob_missing", "the package of image \(image.id) is missing from storage")
                }
                var headers = HTTPFields()
                headers[.contentType] = "application/zip"
                headers[.contentDisposition] = "attachment; filename=\"\(image.name)-\(image.version).imagepackage\""
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            },
        ]
    }

    /// Signs `package` — with the tenant's image-signing key, or for system software (no
    /// tenant) the service's — and stores its row and bytes in the caller's transaction.
    func storeSigned(
        _ package: ImagePackage, tenant: TenantID?, createdBy: String, db: any SQLExecutor, now: Date
    ) async throws -> ImageDocument {
        let key = try await pki.signingKey(tenant == nil ? .systemSoftwareSigning : .imageSigning, tenant: tenant, db: db, now: now)
        let id = ImageID.random()
        let bytes = try package.signed(
            imageID: id, tenantID: tenant, at: now, privateKeyPEM: key.privateKeyPEM, certificateChain: key.certificateChain
        ).zipped()
        let metadata = package.metadata
        let image = ImageDocument(
            id: id, tenantId: tenant, kind: metadata.kind, componentId: metadata.componentId, name: metadata.name,
            version: metadata.version, securityVersion: metadata.securityVersion, sha256: SHA256.hash(data: bytes).hexString,
            length: bytes.count, createdAt: now, createdBy: createdBy)
        guard try await db.insertImage(image) else { throw Self.imageExists(metadata) }
        try await db.storeBlob(bytes, sha256: image.sha256)
        return image
    }

    /// The image a `{tenantId}/images/{imageId}` route names, for a Reader or above.
    private func image(_ context: RampartRequestContext) async throws -> (TenantID, ImageDocument) {
        let tenant = try context.id("tenantId", as: TenantID.self)
        _ = try context.authorize(tenant, .reader)
        let id = try context.id("imageId", as: ImageID.self)
        guard let image = try await database.read({ db in try await db.image(id, in: tenant) }) else {
            throw ServiceError.notFound("image", id.description)
        }
        return (tenant, image)
    }

    private static func imageExists(_ metadata: ImagePackageMetadata) -> ServiceError {
        ServiceError.conflict(
            "image_exists",
            "component \(metadata.componentId) already has an image at version \(metadata.version); images are immutable, so give the new one a new version")
    }
}

extension Request {
    /// Reads an uploaded image package (`application/zip`), refusing more bytes than a
    /// package with `maxPayload` bytes of payload can hold before they are buffered.
    func collectPackage(maxPayload: Int, limits: ImagePackage.Limits) async throws -> Data {
        if let contentType = headers[.contentType]?.lowercased(),
            !contentType.hasPrefix("application/zip"), !contentType.hasPrefix("application/octet-stream")
        {
            throw ServiceError(415, "unsupported_media_type", "send the image package as application/zip, not \(contentType)")
        }
        var request = self
        do {
            return Data(try await request.collectBody(upTo: maxPayload + 4 * limits.smallEntry).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw ServiceError(413, "body_too_large", "this image package may hold at most \(maxPayload) bytes of payload")
        }
    }
}
