import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RampartModel
import RampartTUF

extension API {
    var updateRepository: UpdateRepository { UpdateRepository(pki: pki) }

    /// Each device group's TUF repository, for its own devices only (mutual TLS). Any file
    /// that is not there is a 404: TUF clients stop walking root versions on 404.
    var updateRepositoryEndpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/device/tuf/{deviceGroupId}/metadata/{file}") { _, context in
                let (device, tenant) = try context.requireDevice()
                let groupID = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let file = context.parameters.get("file") ?? ""
                let now = now()
                let repository = updateRepository
                let request = Self.metadataRequest(file)
                // The common poll — timestamp.json with nothing to renew or change — only reads.
                let group = try await database.read { db in try await Self.group(of: device, tenant: tenant, named: groupID, db: db) }
                let mayPublish = switch request {
                case .timestamp, .currentRoot, .root: true
                case .versioned, nil: false
                }
                if mayPublish, try await database.read({ db in try await repository.needsPublish(group: group, db: db, now: now) })
                {
                    try await database.transaction { db in
                        if database.engine == .postgres {
                            try await db.query("SELECT id FROM device_groups WHERE id = $1 FOR UPDATE", .of(groupID))
                        }
                        try await repository.publish(group: group, db: db, now: now)
                    }
                }
                let bytes: Data? = try await database.read { db in
                    switch request {
                    case .currentRoot: return try await repository.latestRoot(tenant: tenant, db: db)
                    case .root(let version): return try await repository.root(tenant: tenant, version: version, db: db)
                    case .timestamp: return try await repository.latest(.timestamp, group: groupID, db: db)?.bytes
                    case .versioned(let role, let version): return try await repository.file(role, version: version, group: groupID, db: db)
                    case nil: return nil
                    }
                }
                guard let bytes else { throw ServiceError.notFound("metadata", file) }
                return try Self.file(bytes, contentType: "application/json")
            },
            Endpoint(.get, "/v1/device/tuf/{deviceGroupId}/targets/{file}") { request, context in
                let (device, tenant) = try context.requireDevice()
                let groupID = try context.id("deviceGroupId", as: DeviceGroupID.self)
                let file = context.parameters.get("file") ?? ""
                let now = now()
                let repository = updateRepository
                // Consistent snapshots: targets are fetched as <sha256>.<path>.
                let parts = file.split(separator: ".", maxSplits: 1)
                let bytes: Data? = try await database.read { db in
                    _ = try await Self.group(of: device, tenant: tenant, named: groupID, db: db)
                    guard parts.count == 2, parts[0].utf8.count == 64 else { return nil }
                    // A new image of a stage that does not reach this device is not served to it.
                    if let image = ImageID(String(parts[1].dropLast(".imagepackage".count))), parts[1].hasSuffix(".imagepackage"),
                        try await Rollouts.withholds(image, from: device, group: groupID, tenant: tenant, db: db, now: now)
                    {
                        return nil
                    }
                    return try await repository.target(path: String(parts[1]), sha256: String(parts[0]), group: groupID, db: db, now: now)
                }
                guard let bytes else { throw ServiceError.notFound("target", file) }
                return try Self.file(bytes, contentType: "application/octet-stream", range: request.headers[.range])
            },
        ]
    }

    /// The device's group, if it is `id`; anything else is 404, as for a group that does not exist.
    static func group(of device: DeviceID, tenant: TenantID, named id: DeviceGroupID, db: any SQLExecutor) async throws
        -> DeviceGroupDocument
    {
        guard try await db.device(device, in: tenant)?.deviceGroupId == id, let group = try await db.deviceGroup(id, in: tenant) else {
            throw ServiceError.notFound("device group", id.description)
        }
        return group
    }

    enum MetadataRequest: Equatable {
        case currentRoot, root(Int), timestamp, versioned(RoleName, Int)
    }

    /// `root.json`, `N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json`.
    static func metadataRequest(_ file: String) -> MetadataRequest? {
        if file == "root.json" { return .currentRoot }
        if file == "timestamp.json" { return .timestamp }
        let parts = file.split(separator: ".")
        guard parts.count == 3, parts[2] == "json", let version = Int(parts[0]), version >= 1, parts[0].allSatisfy(\.isNumber),
            let role = RoleName(rawValue: String(parts[1])), role != .timestamp
        else { return nil }
        return role == .root ? .root(version) : .versioned(role, version)
    }

    /// A whole file, or with `Range: bytes=N-` its tail (206), so a device resumes a download.
    static func file(_ bytes: Data, contentType: String, range: String? = nil) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.acceptRanges] = "bytes"
        guard let range else {
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        guard range.hasPrefix("bytes="), range.hasSuffix("-"), let start = Int(range.dropFirst(6).dropLast()), start >= 0,
            start < bytes.count
        else {
            headers[.contentRange] = "bytes */\(bytes.count)"
            throw ServiceError(416, "range_not_satisfiable", "only Range: bytes=N- with N below \(bytes.count) is served")
        }
        headers[.contentRange] = "bytes \(start)-\(bytes.count - 1)/\(bytes.count)"
        return Response(status: .partialContent, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes.dropFirst(start))))
    }
}
