import Foundation
import Hummingbird
import RampartImage
import RampartModel

extension API {
    /// System-software releases, published and revoked by the service operator. They are
    /// the reference values of attestation: a device is attested only while its measured
    /// runtime is a published, unrevoked release.
    var releaseEndpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/os/releases", action: "os.publish") { request, context in
                try context.requireOperator()
                let body = try await request.decodeBody(PublishReleaseRequest.self)
                let version = try validatedVersion(body.version)
                guard body.measurement.utf8.count == 64, [UInt8](hexString: body.measurement) != nil,
                    body.measurement == body.measurement.lowercased()
                else { throw ServiceError.invalidField("measurement", "must be a SHA-256 digest in lowercase hex") }
                guard (0...65_535).contains(body.securityVersion) else {
                    throw ServiceError.invalidField("securityVersion", "must be between 0 and 65535 (as in image packages)")
                }
                let release = SystemSoftwareRelease(
                    version: version, measurement: body.measurement, feed: body.feed,
                    securityVersion: body.securityVersion, publishedAt: now())
                try await database.transaction { db in
                    guard try await db.insertRelease(release) else {
                        throw ServiceError.conflict(
                            "release_exists", "a release with version \(version) or this measurement is published already")
                    }
                    try await db.audit(context, target: "os-release/\(version)", at: release.publishedAt)
                }
                return try .json(release, status: .created)
            },
            Endpoint(.post, "/v1/os/releases/package", action: "os.publish") { request, context in
                try context.requireOperator()
                let feed = try request.uri.queryParameters.get("feed").map { text in
                    guard let feed = OSFeed(rawValue: String(text)) else {
                        throw ServiceError.invalidField(
                            "feed", "must be one of \(OSFeed.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return feed
                } ?? .retail
                let package = try ImagePackage(
                    uploadedSystemSoftware: try await request.collectPackage(maxPayload: imageLimits.systemSoftware, limits: imageLimits),
                    limits: imageLimits)
                let metadata = package.metadata
                let measurement = metadata.payload.sha256
                let now = now()
                let (release, attached) = try await database.transaction { db in
                    let existing = try await db.release(version: metadata.version)
                    if let existing {
                        // A reference value published earlier gets its package: same bytes, same terms.
                        guard existing.imageId == nil, existing.measurement == measurement, existing.feed == feed,
                            existing.securityVersion == metadata.securityVersion, existing.revokedAt == nil
                        else {
                            throw ServiceError.conflict(
                                "release_exists",
                                "release \(metadata.version) is published already with another package, measurement, feed or security version, or is revoked")
                        }
                    }
                    let image = try await storeSigned(package, tenant: nil, createdBy: "operator", db: db, now: now)
                    if existing != nil {
                        guard try await db.attachPackage(image.id, toRelease: metadata.version) else {
                            throw ServiceError.conflict("release_exists", "release \(metadata.version) got a package meanwhile")
                        }
                    } else {
                        let release = SystemSoftwareRelease(
                            version: metadata.version, measurement: measurement, feed: feed,
                            securityVersion: metadata.securityVersion, publishedAt: now, imageId: image.id)
                        guard try await db.insertRelease(release) else {
                            throw ServiceError.conflict(
                                "release_exists", "another release has this measurement (the same executable under another version)")
                        }
                    }
                    try await db.audit(context, target: "os-release/\(metadata.version)", at: now)
                    return (try await db.release(version: metadata.version)!, existing != nil)
                }
                return try .json(release, status: attached ? .ok : .created)
            },
            Endpoint(.get, "/v1/os/releases") { _, context in
                _ = try context.requirePrincipal()
                return try .json(ListDocument(items: try await database.read { db in try await db.releases() }))
            },
            Endpoint(.post, "/v1/os/releases/{version}/revoke", action: "os.revoke") { request, context in
                try context.requireOperator()
                let version = try validatedVersion(context.parameters.get("version") ?? "")
                let body = try await request.decodeBody(RevokeReleaseRequest.self)
                let reason = try validatedDescription(body.reason)
                let now = now()
                let release = try await database.transaction { db in
                    guard try await db.release(version: version) != nil else {
                        throw ServiceError.notFound("release", version)
                    }
                    guard try await db.revokeRelease(version: version, reason: reason, at: now) else {
                        throw ServiceError.conflict("release_revoked", "release \(version) is revoked already")
                    }
                    try await db.audit(context, target: "os-release/\(version)", at: now)
                    return try await db.release(version: version)!
                }
                return try .json(release)
            },
        ]
    }
}

/// A release version: 1–64 characters of letters, digits, `.`, `-`, `+`, `_`.
func validatedVersion(_ text: String) throws -> String {
    guard isValidVersion(text) else {
        throw ServiceError.invalidField("version", "must be 1–64 letters, digits, '.', '-', '+' or '_'")
    }
    return text
}
