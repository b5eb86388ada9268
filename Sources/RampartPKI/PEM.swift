/// RFC 7468 text encoding: the label's BEGIN line, the DER in base64 at 64 characters a
/// line, the END line, each ending in a newline.
///
/// Written here because it sits on attestation's path (every device certificate goes out
/// in PEM): swift-asn1's encoder spends most of its time walking `String` indices, and
/// Foundation's base64 and a second pass to break the lines took ≈ 3 µs of each
/// attestation. This writes the text once, into a string of the exact length.
public enum PEM {
    public static func encode(_ der: [UInt8], label: String) -> String {
        let begin = "-----BEGIN ".utf8, end = "-----END ".utf8, close = "-----\n".utf8
        let characters = (der.count + 2) / 3 * 4
        let lines = (characters + 63) / 64
        let length = begin.count + end.count + 2 * (label.utf8.count + close.count) + characters + lines
        return String(unsafeUninitializedCapacity: length) { text in
            var at = 0
            func write(_ part: some Sequence<UInt8>) {
                for byte in part {
                    text[at] = byte
                    at += 1
                }
            }
            write(begin)
            write(label.utf8)
            write(close)
            der.withUnsafeBufferPointer { der in
                alphabet.withUnsafeBufferPointer { alphabet in
                    var read = 0
                    var column = 0
                    // Whole groups of three bytes, a newline after every 16 (64 characters).
                    while read + 3 <= der.count {
                        let group = UInt32(der[read]) << 16 | UInt32(der[read + 1]) << 8 | UInt32(der[read + 2])
                        text[at] = alphabet[Int(group >> 18)]
                        text[at + 1] = alphabet[Int(group >> 12 & 0x3f)]
                        text[at + 2] = alphabet[Int(group >> 6 & 0x3f)]
                        text[at + 3] = alphabet[Int(group & 0x3f)]
                        at += 4
                        read += 3
                        column += 4
                        if column == 64 {
                            text[at] = UInt8(ascii: "\n")
                            at += 1
                            column = 0
                        }
                    }
                    // One or two bytes left: padded to four characters.
                    if read < der.count {
                        let two = read + 1 < der.count
                        let group = UInt32(der[read]) << 16 | (two ? UInt32(der[read + 1]) << 8 : 0)
                        text[at] = alphabet[Int(group >> 18)]
                        text[at + 1] = alphabet[Int(group >> 12 & 0x3f)]
                        text[at + 2] = two ? alphabet[Int(group >> 6 & 0x3f)] : UInt8(ascii: "=")
                        text[at + 3] = UInt8(ascii: "=")
                        at += 4
                        column += 4
                    }
                    if column > 0 {
                        text[at] = UInt8(ascii: "\n")
                        at += 1
                    }
                }
            }
            write(end)
            write(label.utf8)
            write(close)
            return at
        }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
}
