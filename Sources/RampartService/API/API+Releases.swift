import Foundation
import Hummingbird
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
                guard (0...Int(Int32.max)).contains(body.securityVersion) else {
                    throw ServiceError.invalidField("securityVersion", "must be between 0 and \(Int32.max)")
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
