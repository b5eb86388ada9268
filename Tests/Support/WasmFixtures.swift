public import Foundation

/// Modules assembled by hand, byte by byte, so the tests need no toolchain.
public enum Wasm {
    public static let header: [UInt8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
    public static let voidType: [UInt8] = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]  // type section: () -> ()
    public static let oneFunction: [UInt8] = [0x03, 0x02, 0x01, 0x00]
    public static let emptyBody: [UInt8] = [0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]

    public static func export(_ name: String, function index: UInt8) -> [UInt8] {
        let bytes = Array(name.utf8)
        let body: [UInt8] = [0x01, UInt8(bytes.count)] + bytes + [0x00, index]
        return [0x07, UInt8(body.count)] + body
    }

    public static func importFunction(_ module: String, _ name: String) -> [UInt8] {
        let m = Array(module.utf8), n = Array(name.utf8)
        let body: [UInt8] = [0x01, UInt8(m.count)] + m + [UInt8(n.count)] + n + [0x00, 0x00]
        return [0x02, UInt8(body.count)] + body
    }

    /// A WASI command that does nothing: `_start` with an empty body.
    public static let command = Data(header + voidType + oneFunction + export("_start", function: 0) + emptyBody)
    public static func importing(_ module: String, _ name: String = "f") -> Data {
        Data(header + voidType + importFunction(module, name) + oneFunction + export("_start", function: 1) + emptyBody)
    }
    public static let library = Data(header + voidType + oneFunction + export("main", function: 0) + emptyBody)
    /// A WASI command whose `_start` traps at once (`unreachable`): an app that crashes at start.
    public static let trapping = Data(
        header + voidType + oneFunction + export("_start", function: 0) + [0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b])
}

