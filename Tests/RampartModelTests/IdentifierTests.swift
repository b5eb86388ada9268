import Foundation
import RampartModel
import RampartTestSupport
import Testing

@Suite struct IdentifierTests {
    @Test func deviceIDsAreNormalisedToLowercaseHex() throws {
        let upper = String(repeating: "AB", count: 32)
        let id = try #require(DeviceID(upper))
        #expect(id.hex == upper.lowercased())
        #expect(DeviceID(String(repeating: "a", count: 63)) == nil)
        #expect(DeviceID(String(repeating: "a", count: 65)) == nil)
        #expect(DeviceID(String(repeating: "g", count: 64)) == nil)
        #expect(DeviceID("") == nil)
    }

    @Test func deviceIDsDecodeStrictly() throws {
        let good = "\"\(String(repeating: "0f", count: 32))\""
        #expect(try JSONDecoder().decode(DeviceID.self, from: Data(good.utf8)).hex.count == 64)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DeviceID.self, from: Data("\"xyz\"".utf8)) }
    }

    @Test func entityIDsAreLowercaseUUIDs() throws {
        let id = try #require(TenantID("3F2504E0-4F89-11D3-9A0C-0305E82C3301"))
        #expect(id.description == "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        #expect(ProductID("not-a-uuid") == nil)
        let encoded = String(decoding: try JSONEncoder().encode(id), as: UTF8.self)
        #expect(encoded == "\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"")
    }

    /// Identifiers are written and read by our own code, not Foundation's: they must agree
    /// with Foundation on every UUID, and refuse what is not one.
    @Test func entityIDTextAgreesWithFoundation() {
        for _ in 0..<2000 {
            let uuid = UUID()
            #expect(TenantID(uuid: uuid).description == uuid.uuidString.lowercased())
            #expect(TenantID(uuid.uuidString)?.uuid == uuid)
        }
        let good = Array("3F2504E0-4f89-11D3-9A0C-0305E82C3301".utf8)
        // Every one-byte change of a valid UUID (digits, hyphens, other ASCII, non-ASCII),
        // deletion and doubling.
        let candidates = ["", "-", String(repeating: "0", count: 36), "3f2504e04f8911d39a0c0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301 "]
            + oneByteEdits(of: good, replacements: Array("0aF-gG -\u{7f}".utf8) + [0xc3, 0x80, 0x00]).map {
                String(decoding: $0, as: UTF8.self)
            }
        // Foundation reads like sscanf: it also takes a digit group one short, a space or a
        // minus sign in place of a digit. We take exactly 8-4-4-4-12 hexadecimal digits.
        let hyphens = [8, 13, 18, 23]
        for text in candidates {
            let utf8 = Array(text.utf8)
            let canonical = utf8.count == 36 && utf8.indices.allSatisfy { index in
                hyphens.contains(index) ? utf8[index] == UInt8(ascii: "-") : [UInt8](hexString: String(decoding: [utf8[index], utf8[index]], as: UTF8.self)) != nil
            }
            if canonical {
                #expect(TenantID(text)?.uuid == UUID(uuidString: text), "\(text.debugDescription)")
            } else {
                #expect(TenantID(text) == nil, "\(text.debugDescription)")
            }
        }
        #expect(TenantID("F2504E0-4f89-11D3-9A0C-0305E82C3301") == nil)
        #expect(TenantID("-F2504E0-4f89-11D3-9A0C-0305E82C3301") == nil)
    }

    @Test func rolesAreOrdered() {
        #expect(Role.administrator.includes(.contributor))
        #expect(Role.contributor.includes(.reader))
        #expect(!Role.reader.includes(.contributor))
        #expect(!Role.contributor.includes(.administrator))
        #expect(Role(name: "reader") == .reader)
        #expect(Role(name: "Owner") == nil)
    }

    @Test func hexRoundTripsAndRefusesNonHex() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa5, 0xff]
        #expect(bytes.hexString == "000fa5ff")
        #expect([UInt8](hexString: "000FA5ff") == bytes)
        #expect([UInt8](hexString: "abc") == nil)
        #expect([UInt8](hexString: "zz") == nil)
        #expect([UInt8](hexString: "") == [])
        #expect([UInt8](hexString: "0g") == nil)
        #expect([UInt8](hexString: "g0") == nil)
        #expect([UInt8](hexString: "00 ") == nil)
        #expect([UInt8](hexString: "ab"[...]) == [0xab])
        let random = (0..<64).map { _ in UInt8.random(in: 0...255) }
        #expect([UInt8](hexString: random.hexString) == random)
        #expect([UInt8](hexString: random.hexString.uppercased()) == random)
    }

    @Test func deviceIDsAcceptMixedCaseOnlyAsHex() {
        let lower = String(repeating: "0a", count: 32)
        #expect(DeviceID(lower)?.hex == lower)
        #expect(DeviceID("0A" + String(repeating: "0a", count: 31))?.hex == lower)
        // 64 bytes but not 64 hex digits, and non-ASCII that lowercases to other lengths.
        #expect(DeviceID(String(repeating: "0", count: 62) + "é") == nil)
        #expect(DeviceID(String(repeating: "0", count: 62) + "İ") == nil)
        #expect(DeviceID(String(repeating: "0", count: 61) + "K") == nil)
    }
}
