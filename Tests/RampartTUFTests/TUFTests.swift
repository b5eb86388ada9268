import Crypto
import Foundation
import RampartDevice
import RampartTUF
import RampartTestSupport
import Testing

/// A repository made in memory: four role keys, and metadata built and signed on demand.
struct FixtureRepository {
    var rootSigners = [try! TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)]
    var targetsSigner = try! TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)
    var snapshotSigner = try! TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)
    var timestampSigner = try! TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    func root(version: Int = 1, expires: TimeInterval = 365 * 86_400, rootThreshold: Int = 1) -> RootMetadata {
        RootMetadata(
            version: version, expires: now.addingTimeInterval(expires),
            keys: rootSigners.map(\.key) + [targetsSigner.key, snapshotSigner.key, timestampSigner.key],
            roles: [
                .root: RoleKeys(keyIDs: rootSigners.map(\.key.keyID), threshold: rootThreshold),
                .targets: RoleKeys(keyIDs: [targetsSigner.key.keyID], threshold: 1),
                .snapshot: RoleKeys(keyIDs: [snapshotSigner.key.keyID], threshold: 1),
                .timestamp: RoleKeys(keyIDs: [timestampSigner.key.keyID], threshold: 1),
            ])
    }

    func signedRoot(_ root: RootMetadata, by signers: [TUFSigner]? = nil) throws -> Data {
        try SignedEnvelope.make(root.json, signers: signers ?? rootSigners)
    }

    func targets(version: Int, payload: Data = Data("image".utf8), expires: TimeInterval = 30 * 86_400) throws -> Data {
        let metadata = TargetsMetadata(
            version: version, expires: now.addingTimeInterval(expires),
            targets: ["app.imagepackage": TargetFile(describing: payload, custom: .object(["rampart": .object(["version": .string("1.0.0")])]))])
        return try SignedEnvelope.make(metadata.json, signers: [targetsSigner])
    }

    func snapshot(version: Int, targets: Data, targetsVersion: Int, expires: TimeInterval = 7 * 86_400) throws -> Data {
        try SignedEnvelope.make(
            SnapshotMetadata(version: version, expires: now.addingTimeInterval(expires), targets: MetaFile(version: targetsVersion, describing: targets)).json,
            signers: [snapshotSigner])
    }

    func timestamp(version: Int, snapshot: Data, snapshotVersion: Int, expires: TimeInterval = 86_400) throws -> Data {
        try SignedEnvelope.make(
            TimestampMetadata(version: version, expires: now.addingTimeInterval(expires), snapshot: MetaFile(version: snapshotVersion, describing: snapshot)).json,
            signers: [timestampSigner])
    }
}

@Suite struct TUFTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scripts/tuf_interop.py").path

    func code(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as TUFError {
            return error.code
        } catch {
            return "unexpected: \(error)"
        }
    }

    @Test func canonicalJSONIsByteForByteSecuresystemslibs() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let value = JSONValue.object([
            "z": .integer(-12), "a": .array([.bool(true), .bool(false), .null, .integer(0), .integer(Int64.max)]),
            "é": .string("quote \" backslash \\ slash / tab \t newline \n nul \u{0} del \u{7f}"),
            "É": .string("ünïcödé 🛡 \u{2028}"), "😀": .object([:]), "A": .object(["b": .string(""), "B": .array([])]),
            "\u{1}": .string("control key"),
        ])
        // Give python the value as ordinary JSON (escaped), and compare its canonical bytes with ours.
        let plain = try JSONSerialization.data(withJSONObject: Self.foundation(value), options: [.fragmentsAllowed])
        try plain.write(to: URL(fileURLWithPath: "\(directory)/in.json"))
        let run = try await Command.run("/usr/bin/env", ["python3", Self.script, "canonical", "\(directory)/in.json", "\(directory)/out.json"])
        #expect(run.status == 0, "\(run.output)")
        let theirs = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/out.json"))
        #expect(value.canonicalBytes == theirs, "\(String(decoding: value.canonicalBytes, as: UTF8.self))\n\(String(decoding: theirs, as: UTF8.self))")
        // Files escape control characters, so any JSON parser reads them; ours reads them back.
        #expect(try JSONValue(parsing: value.jsonBytes) == value)
        #expect(try JSONSerialization.jsonObject(with: value.jsonBytes) is [String: Any])
    }

    static func foundation(_ value: JSONValue) -> Any {
        switch value {
        case .object(let fields): fields.mapValues(foundation)
        case .array(let items): items.map(foundation)
        case .string(let text): text
        case .integer(let number): NSNumber(value: number)
        case .bool(let flag): NSNumber(value: flag)
        case .null: NSNull()
        }
    }

    @Test func theParserRefusesWhatTUFMetadataMustNotHold() {
        for (text, why) in [
            (#"{"a": 1.5}"#, "float"), (#"{"a": 1e3}"#, "exponent"), (#"{"a": 1, "a": 2}"#, "duplicate key"),
            (#"{"a": 01}"#, "leading zero"), (#"{"a": "x"} trailing"#, "trailing bytes"), (#"{"a": "\ud800"}"#, "lone surrogate"),
            (String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "too deep"), ("{\"a\": \"\u{1}\"}", "raw control"),
            (#"{"a": 99999999999999999999}"#, "out of range"),
        ] {
            #expect(code { _ = try JSONValue(parsing: Data(text.utf8)) } == "tuf_metadata_invalid", "\(why)")
        }
    }

    /// python-tuf verifies what we sign, and we verify what it signs.
    @Test func signaturesAreUnderstoodBothWays() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let repo = FixtureRepository()
        let targets = try repo.targets(version: 1)
        let snapshot = try repo.snapshot(version: 1, targets: targets, targetsVersion: 1)
        let files = [
            "1.root.json": try repo.signedRoot(repo.root()), "targets.json": targets, "snapshot.json": snapshot,
            "timestamp.json": try repo.timestamp(version: 1, snapshot: snapshot, snapshotVersion: 1),
        ]
        for (name, bytes) in files { try bytes.write(to: URL(fileURLWithPath: "\(directory)/\(name)")) }
        let verified = try await Command.run("/usr/bin/env", ["python3", Self.script, "verify", directory])
        #expect(verified.status == 0 && verified.output.contains("verified"), "\(verified.output)")

        let signed = try await Command.run("/usr/bin/env", ["python3", Self.script, "sign", directory])
        #expect(signed.status == 0, "\(signed.output)")
        let python = try SignedEnvelope(parsing: try Data(contentsOf: URL(fileURLWithPath: "\(directory)/python-targets.json")), limit: 1 << 20)
        let keyFile = try JSONValue(parsing: try Data(contentsOf: URL(fileURLWithPath: "\(directory)/python-key.json")))
        guard case .string(let keyID) = keyFile["keyid"], case .string(let pem) = keyFile["key"]?["keyval"]?["public"] else {
            Issue.record("python-key.json is not as expected")
            return
        }
        let key = try #require(TUFKey(pemKey: pem))
        #expect(key.keyID == keyID, "we compute python's key ID")
        try python.verify(RoleKeys(keyIDs: [keyID], threshold: 1), keys: [keyID: key], name: .targets)
        #expect(try TargetsMetadata(json: python.signed).common.version == 7)
        // A signature by another key is not one of python's.
        let other = try TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)
        #expect(code { try python.verify(RoleKeys(keyIDs: [other.key.keyID], threshold: 1), keys: [other.key.keyID: other.key], name: .targets) }
            == "tuf_signature_invalid")
    }

    @Test func aFullRefreshIsAccepted() throws {
        let repo = FixtureRepository()
        let targets = try repo.targets(version: 3)
        let snapshot = try repo.snapshot(version: 2, targets: targets, targetsVersion: 3)
        var trusted = try TrustedMetadata(root: try repo.signedRoot(repo.root()), now: repo.now)
        var next = repo.root(version: 2)
        next.common.expires = repo.now.addingTimeInterval(400 * 86_400)
        try trusted.updateRoot(try repo.signedRoot(next))
        try trusted.finishRootUpdates()
        #expect(try trusted.updateTimestamp(try repo.timestamp(version: 5, snapshot: snapshot, snapshotVersion: 2)) == .new)
        try trusted.updateSnapshot(snapshot)
        try trusted.updateTargets(targets)
        let file = try trusted.target("app.imagepackage")
        try file.verify(Data("image".utf8))
        #expect(code { try file.verify(Data("imagf".utf8)) } == "target_hash_mismatch")
        #expect(code { try file.verify(Data("image and then some".utf8)) } == "target_too_large")
        #expect(code { _ = try trusted.target("other") } == "target_unknown")
    }

    @Test func everyAttackIsRefusedWithItsReason() throws {
        var repo = FixtureRepository()
        let rootV1 = try repo.signedRoot(repo.root())

        // Root: a forged signature, a version skipped, a new root its own keys did not sign,
        // one key's signature repeated to fake a threshold of two.
        var forger = repo
        forger.rootSigners = [try TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)]
        var trusted = try TrustedMetadata(root: rootV1, now: repo.now)
        #expect(code { try trusted.updateRoot(try forger.signedRoot(forger.root(version: 2))) } == "tuf_signature_invalid")
        #expect(code { try trusted.updateRoot(try repo.signedRoot(repo.root(version: 3))) } == "tuf_version_mismatch")
        #expect(code { try trusted.updateRoot(try repo.signedRoot(forger.root(version: 2))) } == "tuf_signature_invalid")
        repo.rootSigners.append(try TUFSigner(privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation))
        let twoOfTwo = try repo.signedRoot(repo.root(rootThreshold: 2))
        var padded = try JSONValue(parsing: try repo.signedRoot(repo.root(rootThreshold: 2), by: [repo.rootSigners[0]]))
        if case .object(var fields) = padded, case .array(let signatures)? = fields["signatures"] {
            fields["signatures"] = .array(signatures + signatures)
            padded = .object(fields)
        }
        #expect(code { _ = try TrustedMetadata(root: padded.jsonBytes, now: repo.now) } == "tuf_signature_invalid")
        _ = try TrustedMetadata(root: twoOfTwo, now: repo.now)
        repo.rootSigners.removeLast()

        // A root listing a key under an ID that is not the key's.
        var lying = try JSONValue(parsing: rootV1)
        if case .object(var fields) = lying, case .object(var signed)? = fields["signed"], case .object(let keys)? = signed["keys"] {
            let (id, key) = keys.first!
            var renamed = keys
            renamed[id] = nil
            renamed[String(repeating: "0", count: 64)] = key
            signed["keys"] = .object(renamed)
            fields["signed"] = .object(signed)
            lying = .object(fields)
        }
        #expect(code { _ = try TrustedMetadata(root: lying.jsonBytes, now: repo.now) } == "tuf_metadata_invalid")

        // Timestamp and snapshot: versions rolled back, mix-and-match, a frozen repository.
        let targets1 = try repo.targets(version: 1)
        let targets2 = try repo.targets(version: 2, payload: Data("image v2".utf8))
        let snapshot1 = try repo.snapshot(version: 1, targets: targets1, targetsVersion: 1)
        let snapshot2 = try repo.snapshot(version: 2, targets: targets2, targetsVersion: 2)
        trusted = try TrustedMetadata(root: rootV1, now: repo.now)
        try trusted.updateTimestamp(try repo.timestamp(version: 2, snapshot: snapshot2, snapshotVersion: 2))
        // Mix-and-match: the new timestamp with the old snapshot.
        #expect(code { try trusted.updateSnapshot(snapshot1) } == "tuf_snapshot_mismatch")
        try trusted.updateSnapshot(snapshot2)
        #expect(code { try trusted.updateTargets(targets1) } == "tuf_snapshot_mismatch")
        try trusted.updateTargets(targets2)
        #expect(code { try trusted.updateTimestamp(try repo.timestamp(version: 1, snapshot: snapshot1, snapshotVersion: 1)) } == "tuf_version_rollback")
        #expect(code { try trusted.updateTimestamp(try repo.timestamp(version: 3, snapshot: snapshot1, snapshotVersion: 1)) } == "tuf_version_rollback")
        #expect(try trusted.updateTimestamp(try repo.timestamp(version: 2, snapshot: snapshot2, snapshotVersion: 2)) == .unchanged)
        // A snapshot that names an older targets version than the trusted one.
        let snapshot3 = try repo.snapshot(version: 3, targets: targets1, targetsVersion: 1)
        try trusted.updateTimestamp(try repo.timestamp(version: 3, snapshot: snapshot3, snapshotVersion: 3))
        #expect(code { try trusted.updateSnapshot(snapshot3) } == "tuf_version_rollback")

        // Freeze: an expired timestamp (and an expired root) is refused.
        var fresh = try TrustedMetadata(root: rootV1, now: repo.now)
        #expect(code { try fresh.updateTimestamp(try repo.timestamp(version: 1, snapshot: snapshot1, snapshotVersion: 1, expires: -1)) }
            == "tuf_metadata_expired")
        let later = try TrustedMetadata(root: rootV1, now: repo.now.addingTimeInterval(400 * 86_400))
        #expect(code { try later.finishRootUpdates() } == "tuf_metadata_expired")
        // A timestamp signed by the snapshot key.
        var swapped = repo
        swapped.timestampSigner = repo.snapshotSigner
        #expect(code { try fresh.updateTimestamp(try swapped.timestamp(version: 1, snapshot: snapshot1, snapshotVersion: 1)) } == "tuf_signature_invalid")
        // A target whose "hash" is a path, signed by the right key: refused (it would name files).
        let sneaky = try SignedEnvelope.make(
            TargetsMetadata(version: 1, expires: repo.now.addingTimeInterval(86_400),
                            targets: ["x": TargetFile(length: 1, sha256: "../../../etc/passwd")]).json,
            signers: [repo.targetsSigner])
        let sneakySnapshot = try repo.snapshot(version: 9, targets: sneaky, targetsVersion: 1)
        var victim = try TrustedMetadata(root: rootV1, now: repo.now)
        try victim.updateTimestamp(try repo.timestamp(version: 9, snapshot: sneakySnapshot, snapshotVersion: 9))
        try victim.updateSnapshot(sneakySnapshot)
        #expect(code { try victim.updateTargets(sneaky) } == "tuf_metadata_invalid")
        // Oversize metadata is refused before it is parsed.
        #expect(code { try fresh.updateTimestamp(Data(repeating: 0x20, count: 17 << 10)) } == "tuf_metadata_too_large")
        // A float where an integer belongs, signed properly: refused by the parser.
        let floaty = String(decoding: try repo.timestamp(version: 1, snapshot: snapshot1, snapshotVersion: 1), as: UTF8.self)
            .replacingOccurrences(of: #""version":1"#, with: #""version":1.0"#)
        #expect(code { try fresh.updateTimestamp(Data(floaty.utf8)) } == "tuf_metadata_invalid")
    }
}
