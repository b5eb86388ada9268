public import Foundation
import WasmKit
import WasmParser

/// What the service and `rampart app pack` check of an app's WebAssembly payload before
/// anyone signs it: WasmKit decodes every section, the module exports a `_start` function
/// (a WASI command), and it imports only from WASI preview 1 and Rampart's host API.
///
/// WasmKit validates function bodies when it compiles them, so the device compiles the
/// module fully before it switches to a new image; this check is the earlier, cheaper gate.
public enum WasmPayloadCheck {
    /// The import modules an app may name.
    public static let allowedImportModules: Set<String> = ["wasi_snapshot_preview1", "rampart"]

    /// The `rampart` host API (SDK/rampart.h): each function's number of i32 parameters; each
    /// returns one i32.
    public static let hostFunctions: [String: Int] = [
        "event_wait": 4, "system_events_subscribe": 0, "update_defer": 1, "gpio_set": 2, "gpio_get": 1,
        "uart_write": 4, "uart_read": 4, "i2c_transfer": 7, "spi_transfer": 5, "adc_read": 1, "pwm_set": 3,
        "https_request": 10, "app_send": 4,
    ]

    public static func check(_ wasm: Data, manifest: AppManifest) throws {
        let module: Module
        do {
            module = try parseWasm(bytes: Array(wasm))
        } catch {
            throw ImagePackageError("wasm_invalid", "the payload is not a valid WebAssembly module: \(error)")
        }
        if let foreign = module.imports.first(where: { !allowedImportModules.contains($0.module) }) {
            throw ImagePackageError(
                "wasm_import_unknown",
                "the module imports '\(foreign.module).\(foreign.name)'; apps may import only from \(allowedImportModules.sorted().joined(separator: " and "))")
        }
        // Names only: WasmKit does not expose the type section; a wrong type fails the
        // device's validation, which instantiates against the host API.
        if let unknown = module.imports.first(where: { $0.module == "rampart" && hostFunctions[$0.name] == nil }) {
            throw ImagePackageError(
                "wasm_import_unknown", "the module imports 'rampart.\(unknown.name)', which the host API (rampart.h) does not have")
        }
        guard module.exports.contains(where: { export in
            if case .function = export.descriptor { return export.name == "_start" }
            return false
        }) else {
            throw ImagePackageError("wasm_no_entry_point", "the module exports no '_start' function (build it as a WASI command)")
        }
        for case let (imported, .memory(type)) in module.imports.map({ ($0, $0.descriptor) }) {
            guard UInt64(type.min) * 64 <= UInt64(manifest.limits.memoryKB) else {
                throw ImagePackageError(
                    "wasm_memory_exceeds_limit",
                    "the imported memory '\(imported.name)' starts at \(type.min) pages, more than Limits.MemoryKB = \(manifest.limits.memoryKB) KiB")
            }
        }
    }
}
