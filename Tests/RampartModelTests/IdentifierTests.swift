import Foundation
import RampartModel
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
    }
}
