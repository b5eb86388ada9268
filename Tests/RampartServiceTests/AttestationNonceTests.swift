import Crypto
import Foundation
import RampartModel
import RampartPKI
@testable import RampartService
import Testing

/// Stateless challenge nonces: what the MAC must stop, and which services share a key.
@Suite struct AttestationNonceTests {
    let device = DeviceID(String(repeating: "ab", count: 32))!
    let other = DeviceID(String(repeating: "cd", count: 32))!
    let now = Date(timeIntervalSince1970: 1_800_000_000.25)

    func refusal(_ nonces: AttestationNonces, _ nonce: Data, _ device: DeviceID, at time: Date) -> String? {
        do {
            _ = try nonces.check(nonce, device: device, now: time)
            return nil
        } catch let error as ServiceError {
            return error.code
        } catch {
            return "\(error)"
        }
    }

    @Test func aNonceIsGoodOnlyForItsDeviceUntilItExpires() throws {
        let nonces = AttestationNonces(key: SymmetricKey(size: .bits256), keepSpentInMemory: true)
        let (nonce, expiresAt) = nonces.issue(for: device, now: now)
        #expect(nonce.count == 32)
        #expect(expiresAt == Date(timeIntervalSince1970: 1_800_000_061))
        let fresh = try nonces.check(nonce, device: device, now: now)
        #expect(fresh.expiresAt == expiresAt)
        #expect(fresh.tag == nonce.suffix(20).hexString)
        // Two nonces for the same device at the same instant differ.
        #expect(nonces.issue(for: device, now: now).nonce != nonce)

        #expect(refusal(nonces, nonce, other, at: now) == "nonce_unknown")
        #expect(refusal(nonces, nonce, device, at: expiresAt.addingTimeInterval(-0.001)) == nil)
        #expect(refusal(nonces, nonce, device, at: expiresAt) == "nonce_expired")
        // Any byte changed — format, expiry, random part or MAC — and it is not ours.
        for index in nonce.indices {
            var tampered = nonce
            tampered[index] ^= 0x01
            #expect(refusal(nonces, tampered, device, at: now) == "nonce_unknown", "byte \(index)")
        }
        #expect(refusal(nonces, nonce.dropLast(), device, at: now) == "nonce_unknown")
        #expect(refusal(nonces, nonce + [0], device, at: now) == "nonce_unknown")
        #expect(refusal(nonces, Data(count: 32), device, at: now) == "nonce_unknown")
        #expect(refusal(nonces, Data(), device, at: now) == "nonce_unknown")

        // Kept in memory, it is spent once.
        try nonces.spendUpfront(fresh, now: now)
        #expect(throws: AttestationNonces.replayed) { try nonces.spendUpfront(fresh, now: now) }
    }

    /// Nodes on one PostgreSQL share the key through the key-encryption key; a service with
    /// another one, or an SQLite service after a restart, takes none of the nonces.
    @Test func theKeyIsSharedExactlyWhereItShouldBe() throws {
        let encryptionKey = String(repeating: "5a", count: 32)
        let nodeA = AttestationNonces(key: KeyCustody.sealed(try KeySealer(encoded: encryptionKey)).attestationNonceKey(), keepSpentInMemory: false)
        let nodeB = AttestationNonces(key: KeyCustody.sealed(try KeySealer(encoded: encryptionKey)).attestationNonceKey(), keepSpentInMemory: false)
        let elsewhere = AttestationNonces(
            key: KeyCustody.sealed(try KeySealer(encoded: String(repeating: "a5", count: 32))).attestationNonceKey(), keepSpentInMemory: false)
        let (nonce, _) = nodeA.issue(for: device, now: now)
        #expect(refusal(nodeB, nonce, device, at: now) == nil)
        #expect(refusal(elsewhere, nonce, device, at: now) == "nonce_unknown")
        // The derived key is not the key-encryption key itself.
        #expect(
            KeySealer(key: SymmetricKey(data: [UInt8](hexString: encryptionKey)!)).derivedKey(purpose: "rampart attestation nonce v1")
                != SymmetricKey(data: [UInt8](hexString: encryptionKey)!))

        let custody = KeyCustody.files(directory: "/nonexistent")
        let beforeRestart = AttestationNonces(key: custody.attestationNonceKey(), keepSpentInMemory: false)
        let afterRestart = AttestationNonces(key: custody.attestationNonceKey(), keepSpentInMemory: false)
        let (old, _) = beforeRestart.issue(for: device, now: now)
        #expect(refusal(afterRestart, old, device, at: now) == "nonce_unknown")
    }

    /// Kept in memory (SQLite), a nonce is spent once; the sweep forgets only expired ones.
    /// The nonce MAC is HMAC-SHA256 computed by hand from prepared key blocks: it must be
    /// swift-crypto's HMAC for keys shorter than, as long as and longer than a block.
    @Test func keyedHMACIsHMAC() {
        for keyLength in [0, 1, 32, 63, 64, 65, 200] {
            let key = SymmetricKey(data: (0..<keyLength).map { _ in UInt8.random(in: 0...255) })
            let keyed = KeyedHMAC(key: key)
            for length in [0, 1, 12, 55, 56, 64, 76, 300] {
                let first = (0..<length).map { _ in UInt8.random(in: 0...255) }
                let second = Array("device".utf8)
                let ours = first.withUnsafeBytes { a in second.withUnsafeBytes { b in keyed.authenticationCode(a, b) } }
                let theirs = HMAC<SHA256>.authenticationCode(for: first + second, using: key)
                #expect(Array(ours) == Array(theirs), "key \(keyLength) bytes, message \(length) + 6 bytes")
            }
        }
    }

    /// A nonce is spent once; a sweep forgets those expired a minute or more before it and
    /// keeps every one not yet expired, whatever the second within the minute.
    @Test func spentInMemoryOnce() {
        func fresh(_ byte: UInt8, expiresAt: Date) -> AttestationNonces.Fresh {
            .init(mac: .init([UInt8](repeating: byte, count: AttestationNonces.macLength)), expiresAt: expiresAt)
        }
        for offset in stride(from: 0.0, to: 60, by: 7.5) {
            let now = now.addingTimeInterval(offset)
            let spent = SpentInMemory()
            let first = fresh(1, expiresAt: now.addingTimeInterval(60))
            let second = fresh(2, expiresAt: now.addingTimeInterval(200))
            let third = fresh(3, expiresAt: now.addingTimeInterval(150))
            #expect(spent.spend(first, sweepingBefore: nil))
            #expect(!spent.spend(first, sweepingBefore: nil))
            #expect(spent.spend(second, sweepingBefore: nil))
            #expect(spent.spend(third, sweepingBefore: now.addingTimeInterval(150)))
            #expect(spent.count == 2)  // the first, expired 90 s before the sweep, is forgotten
            #expect(!spent.spend(second, sweepingBefore: now.addingTimeInterval(150)))
            #expect(!spent.spend(third, sweepingBefore: now.addingTimeInterval(150)))
        }
        #expect(fresh(0xab, expiresAt: now).tag == String(repeating: "ab", count: AttestationNonces.macLength))
    }

    /// On PostgreSQL a nonce is spent once across nodes by the table's primary key; the
    /// sweep forgets those long expired.
    @Test func spentInTheSharedTableOnceAndSwept() async throws {
        let now = Date()
        try await ServiceHarness.with(.postgres) { harness in
            let nodeA = AttestationNonces(key: SymmetricKey(size: .bits256), keepSpentInMemory: false)
            let nodeB = AttestationNonces(key: SymmetricKey(size: .bits256), keepSpentInMemory: false)
            func mac(_ byte: UInt8) -> AttestationNonces.MAC { .init([UInt8](repeating: byte, count: AttestationNonces.macLength)) }
            let old = AttestationNonces.Fresh(mac: mac(1), expiresAt: now.addingTimeInterval(-AttestationNonces.spentRetention - 1))
            let fresh = AttestationNonces.Fresh(mac: mac(2), expiresAt: now.addingTimeInterval(60))
            try await harness.database.transaction { db in
                try await db.query("INSERT INTO spent_nonces (nonce_tag, expires_at) VALUES ($1, $2)", .text(old.tag), .of(old.expiresAt))
            }
            #expect(try await harness.database.transaction { db in try await nodeA.spend(fresh, db: db, now: now) })
            #expect(try await harness.database.transaction { db in try await nodeB.spend(fresh, db: db, now: now) } == false)
            let tags = try await harness.database.read { db in
                try await db.query("SELECT nonce_tag FROM spent_nonces", []).map { try $0.text("nonce_tag") }
            }
            #expect(tags == [fresh.tag])
        }
    }

    @Test func sweepsRunAtMostOnceAMinute() {
        let schedule = SweepSchedule(interval: 60)
        #expect(schedule.isDue(now: now))
        #expect(!schedule.isDue(now: now.addingTimeInterval(59)))
        #expect(schedule.isDue(now: now.addingTimeInterval(60)))
    }
}
