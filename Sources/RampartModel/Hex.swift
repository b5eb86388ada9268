import Foundation

extension Sequence<UInt8> {
    /// Lowercase hexadecimal, two digits a byte: how Rampart writes digests, fingerprints,
    /// serial numbers and device IDs.
    public var hexString: String {
        withContiguousStorageIfAvailable(hexEncoded) ?? Array(self).withUnsafeBufferPointer(hexEncoded)
    }
}

/// One pass over contiguous bytes: generic iteration across modules costs a call per byte.
private func hexEncoded(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    String(unsafeUninitializedCapacity: bytes.count * 2) { text in
        for (index, byte) in bytes.enumerated() {
            text[2 * index] = lowercaseHexDigit(byte >> 4)
            text[2 * index + 1] = lowercaseHexDigit(byte & 0x0f)
        }
        return bytes.count * 2
    }
}

extension Array where Element == UInt8 {
    /// Bytes from hexadecimal (either case); `nil` for an odd length or a non-hex digit.
    public init?(hexString text: some StringProtocol) {
        var text = String(text)
        guard let bytes = text.withUTF8({ Self.hexDecoded($0) }) else { return nil }
        self = bytes
    }

    /// One pass over the UTF-8 bytes: generic iteration over `StringProtocol` across
    /// modules costs a call per character.
    private static func hexDecoded(_ utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard utf8.count.isMultiple(of: 2) else { return nil }
        var valid = true
        let bytes = [UInt8](unsafeUninitializedCapacity: utf8.count / 2) { out, initialized in
            for index in 0..<utf8.count / 2 {
                guard let high = hexValue(utf8[2 * index]), let low = hexValue(utf8[2 * index + 1]) else {
                    valid = false
                    break
                }
                out[index] = high << 4 | low
                initialized = index + 1
            }
        }
        return valid ? bytes : nil
    }
}

/// The lowercase hexadecimal digit of a value below 16.
@inline(__always) func lowercaseHexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}

/// The value of one hexadecimal digit of either case, or nil.
@inline(__always) func hexValue(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
    default: nil
    }
}
