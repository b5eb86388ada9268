import Foundation
public import SwiftASN1
public import X509

/// DiceTcbInfo (TCG DICE Attestation Architecture, OID 2.23.133.5.4.1): what software a
/// DICE layer measured. All fields are IMPLICIT context-tagged; we write vendor, model,
/// version, svn, layer and the SHA-256 FWIDs.
public struct DiceTcbInfo: Sendable, Equatable {
    public static let oid: ASN1ObjectIdentifier = [2, 23, 133, 5, 4, 1]
    static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]

    public var vendor: String
    public var model: String
    public var version: String
    public var securityVersion: Int
    public var layer: Int
    /// SHA-256 digests of the measured firmware.
    public var fwids: [[UInt8]]

    public init(vendor: String, model: String, version: String, securityVersion: Int, layer: Int, fwids: [[UInt8]]) {
        self.vendor = vendor
        self.model = model
        self.version = version
        self.securityVersion = securityVersion
        self.layer = layer
        self.fwids = fwids
    }

    public func certificateExtension() throws -> Certificate.Extension {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try ASN1UTF8String(vendor).serialize(into: &coder, withIdentifier: Self.tag(0))
            try ASN1UTF8String(model).serialize(into: &coder, withIdentifier: Self.tag(1))
            try ASN1UTF8String(version).serialize(into: &coder, withIdentifier: Self.tag(2))
            try securityVersion.serialize(into: &coder, withIdentifier: Self.tag(3))
            try layer.serialize(into: &coder, withIdentifier: Self.tag(4))
            try coder.appendConstructedNode(identifier: Self.tag(6)) { list in
                for digest in fwids {
                    try list.appendConstructedNode(identifier: .sequence) { fwid in
                        try fwid.serialize(Self.sha256)
                        try fwid.serialize(ASN1OctetString(contentBytes: ArraySlice(digest)))
                    }
                }
            }
        }
        return Certificate.Extension(oid: Self.oid, critical: false, value: ArraySlice(serializer.serializedBytes))
    }

    /// Appends the whole extension (extnID, extnValue) in DER to `bytes`, written directly
    /// rather than through swift-asn1's serializer: every device certificate carries one.
    /// The same bytes as `DER.encoded(certificateExtension())` (tested).
    func appendExtension(to bytes: inout [UInt8]) {
        DER.appendNode(tag: 0x30, to: &bytes) { ext in
            ext += Self.oidNode
            // Not critical: the DEFAULT FALSE is left out.
            DER.appendNode(tag: 0x04, to: &ext) { value in
                DER.appendNode(tag: 0x30, to: &value) { info in
                    // [0]–[4] IMPLICIT, primitive: context-specific tags 0x80–0x84.
                    DER.appendNode(tag: 0x80, to: &info) { DER.appendUTF8(vendor, to: &$0) }
                    DER.appendNode(tag: 0x81, to: &info) { DER.appendUTF8(model, to: &$0) }
                    DER.appendNode(tag: 0x82, to: &info) { DER.appendUTF8(version, to: &$0) }
                    DER.appendNode(tag: 0x83, to: &info) { $0 += Self.integerContent(securityVersion) }
                    DER.appendNode(tag: 0x84, to: &info) { $0 += Self.integerContent(layer) }
                    // [6] IMPLICIT SEQUENCE OF FWID: constructed.
                    DER.appendNode(tag: 0xa6, to: &info) { list in
                        for digest in fwids {
                            DER.appendNode(tag: 0x30, to: &list) { fwid in
                                fwid += Self.sha256Node
                                DER.appendNode(tag: 0x04, to: &fwid) { $0 += digest }
                            }
                        }
                    }
                }
            }
        }
    }

    private static let oidNode = try! DER.encoded(oid)
    private static let sha256Node = try! DER.encoded(sha256)

    /// The content octets of a DER INTEGER: two's complement, minimal.
    static func integerContent(_ value: Int) -> [UInt8] {
        var bytes = withUnsafeBytes(of: value.bigEndian) { Array($0) }
        while bytes.count > 1, (bytes[0] == 0 && bytes[1] < 0x80) || (bytes[0] == 0xff && bytes[1] >= 0x80) {
            bytes.removeFirst()
        }
        return bytes
    }

    /// Reads the extension back (what a verifier does).
    public init(_ ext: Certificate.Extension) throws {
        guard ext.oid == Self.oid else { throw PKIError(code: "invalid_tcb_info", message: "extension is \(ext.oid), not DiceTcbInfo") }
        let root = try DER.parse(ext.value)
        var vendor = "", model = "", version = ""
        var securityVersion = 0, layer = 0
        var fwids: [[UInt8]] = []
        try DER.sequence(root, identifier: .sequence) { nodes in
            while let node = nodes.next() {
                switch node.identifier {
                case Self.tag(0): vendor = try ASN1UTF8String(derEncoded: node, withIdentifier: Self.tag(0)).stringValue
                case Self.tag(1): model = try ASN1UTF8String(derEncoded: node, withIdentifier: Self.tag(1)).stringValue
                case Self.tag(2): version = try ASN1UTF8String(derEncoded: node, withIdentifier: Self.tag(2)).stringValue
                case Self.tag(3): securityVersion = try Int(derEncoded: node, withIdentifier: Self.tag(3))
                case Self.tag(4): layer = try Int(derEncoded: node, withIdentifier: Self.tag(4))
                case Self.tag(6):
                    fwids = try DER.sequence(of: FWID.self, identifier: Self.tag(6), rootNode: node).map(\.digest)
                default: continue
                }
            }
        }
        self.init(vendor: vendor, model: model, version: version, securityVersion: securityVersion, layer: layer, fwids: fwids)
    }

    static func tag(_ number: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: number, tagClass: .contextSpecific) }

    struct FWID: DERParseable {
        let digest: [UInt8]
        init(derEncoded node: ASN1Node) throws {
            digest = try DER.sequence(node, identifier: .sequence) { nodes in
                _ = try ASN1ObjectIdentifier(derEncoded: &nodes)
                return Array(try ASN1OctetString(derEncoded: &nodes).bytes)
            }
        }
    }
}

extension ASN1UTF8String {
    var stringValue: String { String(decoding: bytes, as: UTF8.self) }
}
