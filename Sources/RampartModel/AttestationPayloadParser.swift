import Foundation

extension AttestationPayload {
    /// Decodes the payload's JSON: `JSONDecoder` accepts exactly what this returns.
    ///
    /// The service reads one payload per attestation, and Foundation's decoder spends about
    /// as long on it as the device certificate's signature takes. So a parser written for
    /// this one shape goes first. It takes only the plain form: no string escapes, only ASCII
    /// text, each known key once and no other, counters as plain decimal integers. Anything
    /// else it leaves to `JSONDecoder`, whose verdict (value or error) is the answer. A
    /// differential test holds it to that.
    public static func decode(json: some Collection<UInt8>) throws -> AttestationPayload {
        let plain = json.withContiguousStorageIfAvailable { bytes in
            var parser = PlainPayloadParser(bytes: bytes)
            return parser.payload()
        }
        if let plain = plain ?? nil { return plain }
        return try JSONDecoder.rampart.decode(AttestationPayload.self, from: Data(json))
    }

    /// The plain-form parser alone: nil where it leaves the bytes to `JSONDecoder`. For tests.
    public static func decodePlain(json: [UInt8]) -> AttestationPayload? {
        json.withUnsafeBufferPointer { bytes in
            var parser = PlainPayloadParser(bytes: bytes)
            return parser.payload()
        }
    }
}

/// A one-pass reader of the plain form of an ``AttestationPayload``'s JSON. Every method
/// returns nil at the first byte outside that form; none of them throws.
private struct PlainPayloadParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func payload() -> AttestationPayload? {
        var deviceId: DeviceID?
        var nonce: String?
        var softwareVersion: String?
        var measurements: [MeasuredComponent]?
        var counters: [String: UInt64]?
        var clientKey: String?
        let complete = object { key, parser in
            switch key {
            case "deviceId": Self.once(&deviceId) { parser.string().flatMap(DeviceID.init) }
            case "nonce": Self.once(&nonce) { parser.string() }
            case "softwareVersion": Self.once(&softwareVersion) { parser.string() }
            case "clientKey": Self.once(&clientKey) { parser.string() }
            case "measurements": Self.once(&measurements) { parser.measurements() }
            case "counters": Self.once(&counters) { parser.counters() }
            default: false
            }
        }
        skipWhitespace()
        guard complete, index == bytes.count, let deviceId, let nonce, let softwareVersion, let measurements,
            let counters, let clientKey
        else { return nil }
        return AttestationPayload(
            deviceId: deviceId, nonce: nonce, softwareVersion: softwareVersion, measurements: measurements,
            counters: counters, clientKey: clientKey)
    }

    private mutating func measurements() -> [MeasuredComponent]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var list: [MeasuredComponent] = []
        if take(UInt8(ascii: "]")) { return list }
        repeat {
            var name: String?
            var sha256: String?
            let complete = object { key, parser in
                switch key {
                case "name": Self.once(&name) { parser.string() }
                case "sha256": Self.once(&sha256) { parser.string() }
                default: false
                }
            }
            guard complete, let name, let sha256 else { return nil }
            list.append(MeasuredComponent(name: name, sha256: sha256))
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]")) ? list : nil
    }

    private mutating func counters() -> [String: UInt64]? {
        var map: [String: UInt64] = [:]
        let complete = object { key, parser in
            guard map[key] == nil, let value = parser.unsignedInteger() else { return false }
            map[key] = value
            return true
        }
        return complete ? map : nil
    }

    /// Puts what `read` gives into `slot`: false when the key came before (a duplicate) or
    /// its value is not in the plain form.
    private static func once<Value>(_ slot: inout Value?, _ read: () -> Value?) -> Bool {
        guard slot == nil, let value = read() else { return false }
        slot = value
        return true
    }

    /// `{ "key": value, … }`, calling `member` with each key to read its value.
    private mutating func object(_ member: (String, inout PlainPayloadParser) -> Bool) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        if take(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), take(UInt8(ascii: ":")), member(key, &self) else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
    }

    /// A string of printable ASCII without escapes.
    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            guard byte >= 0x20, byte < 0x7f, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        return nil
    }

    /// A decimal integer without sign, fraction, exponent or leading zero, up to `UInt64.max`.
    private mutating func unsignedInteger() -> UInt64? {
        skipWhitespace()
        let start = index
        var value: UInt64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let (times10, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times10.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { return nil }
            value = sum
            index += 1
        }
        let digits = index - start
        guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        // A fraction or an exponent follows: not the plain form.
        if index < bytes.count {
            let next = bytes[index]
            if next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") { return nil }
        }
        return value
    }

    /// Skips whitespace, then consumes `byte` if it is next.
    private mutating func take(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// JSON's four whitespace characters.
    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0a, 0x0d: index += 1
            default: return
            }
        }
    }
}
