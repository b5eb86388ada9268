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
            text[2 * index] = hexDigits[Int(byte >> 4)]
            text[2 * index + 1] = hexDigits[Int(byte & 0x0f)]
        }
        return bytes.count * 2
    }
}

/// ASCII `0`–`9`, `a`–`f`.
private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

extension Array where Element == UInt8 {
    /// Bytes from hexadecimal (either case); `nil` for an odd length or a non-hex digit.
    public init?(hexString text: some StringProtocol) {
        guard text.utf8.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        self = bytes
    }
}
