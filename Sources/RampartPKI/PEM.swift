import Foundation

/// RFC 7468 text encoding: the label's BEGIN line, the DER in base64 at 64 characters a
/// line, the END line, each ending in a newline.
///
/// Written here because it sits on attestation's path (every device certificate goes out
/// in PEM) and swift-asn1's encoder spends most of its time walking `String` indices.
public enum PEM {
    public static func encode(_ der: [UInt8], label: String) -> String {
        let base64 = Array(Data(der).base64EncodedData())
        var text: [UInt8] = []
        text.reserveCapacity(base64.count + base64.count / 64 + 1 + 2 * label.utf8.count + 32)
        text += "-----BEGIN \(label)-----\n".utf8
        var start = 0
        while start < base64.count {
            let end = min(start + 64, base64.count)
            text += base64[start..<end]
            text.append(UInt8(ascii: "\n"))
            start = end
        }
        text += "-----END \(label)-----\n".utf8
        return String(decoding: text, as: UTF8.self)
    }
}
