import Foundation
import RampartModel
import RampartTestSupport
import Testing

/// The payload's own parser must never disagree with `JSONDecoder`: wherever it returns a
/// value, `JSONDecoder` returns the same one, and `AttestationPayload.decode` answers as
/// `JSONDecoder` does, value or error, for every input.
@Suite struct AttestationPayloadParserTests {
    static let payload = AttestationPayload(
        deviceId: DeviceID(String(repeating: "5e", count: 32))!, nonce: "q8Jx/9+abc=", softwareVersion: "1.4.0-rc.1",
        measurements: [
            MeasuredComponent(name: "rampartd", sha256: String(repeating: "a1", count: 32)),
            MeasuredComponent(name: "app:blink", sha256: String(repeating: "07", count: 32)),
        ],
        counters: ["system-software": 3, "app:blink": 0, "big": UInt64.max], clientKey: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/x+y=")

    static func reference(_ bytes: [UInt8]) -> AttestationPayload? {
        try? JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(bytes))
    }

    /// Checks one input against `JSONDecoder`; returns whether the plain parser took it.
    @discardableResult
    static func agrees(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let expected = reference(bytes)
        let plain = AttestationPayload.decodePlain(json: bytes)
        if let plain {
            #expect(plain == expected, "plain parser took \(String(decoding: bytes, as: UTF8.self).debugDescription)", sourceLocation: sourceLocation)
        }
        #expect((try? AttestationPayload.decode(json: bytes)) == expected, sourceLocation: sourceLocation)
        return plain != nil
    }

    @Test func takesWhatDevicesSend() throws {
        let bytes = Array(try JSONEncoder.rampart.encode(Self.payload))
        #expect(AttestationPayload.decodePlain(json: bytes) == Self.payload)
        #expect(try AttestationPayload.decode(json: bytes) == Self.payload)
        // Without sorted keys, pretty-printed: the same value.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        let pretty = Array(try encoder.encode(Self.payload))
        #expect(AttestationPayload.decodePlain(json: pretty) == Self.payload)
    }

    @Test func leavesEverythingElseToJSONDecoder() throws {
        let device = String(repeating: "5e", count: 32)
        let sha = String(repeating: "a1", count: 32)
        func document(counters: String = #"{"c":1}"#, nonce: String = #""n""#, extra: String = "") -> [UInt8] {
            Array(
                #"{"deviceId":"\#(device)","nonce":\#(nonce),"softwareVersion":"1","measurements":[{"name":"r","sha256":"\#(sha)"}],"counters":\#(counters),"clientKey":"k"\#(extra)}"#
                    .utf8)
        }
        #expect(Self.agrees(document()))
        let others: [[UInt8]] = [
            document(nonce: #""\u0041""#), document(nonce: #""a\/b""#), document(nonce: #""é""#), document(nonce: "null"),
            document(nonce: "1"), document(counters: #"{"c":1.0}"#), document(counters: #"{"c":1e2}"#),
            document(counters: #"{"c":-1}"#), document(counters: #"{"c":01}"#), document(counters: #"{"c":18446744073709551616}"#),
            document(counters: #"{"c":1,"c":2}"#), document(counters: "[]"), document(extra: #","nonce":"again""#),
            document(extra: #","unknown":true"#), document(extra: ","), Array("\u{feff}".utf8) + document(),
            document() + Array("x".utf8), document() + Array("{}".utf8), Array(document().dropLast()), [], Array("null".utf8),
        ]
        for bytes in others {
            #expect(!Self.agrees(bytes), "\(String(decoding: bytes, as: UTF8.self))")
        }
        // Whitespace wherever JSON allows it is still the plain form.
        let spaced = Array(String(decoding: document(), as: UTF8.self).replacingOccurrences(of: ",", with: " ,\n\t").utf8)
        #expect(Self.agrees([0x20] + spaced + [0x0d, 0x0a]))
    }

    /// Every one-byte change, deletion and doubling of a real payload.
    @Test func agreesOnEveryOneByteEdit() throws {
        let bytes = Array(try JSONEncoder.rampart.encode(Self.payload))
        let replacements = Array(#""\{}[],: 09-.eAa"#.utf8) + [0x00, 0x09, 0x1f, 0x7f, 0x80, 0xc3, 0xff]
        let taken = oneByteEdits(of: bytes, replacements: replacements).filter { Self.agrees($0) }.count
        // Edits inside strings and digits keep the plain form; the test must have seen some.
        #expect(taken > 100)
    }
}
