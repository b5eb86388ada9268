public import Foundation
import RampartImage
import WasmKit
import WasmKitWASI
import WASI

/// Checks a module the way the device will run it, before an install switches to it.
public enum AppHost {
    /// Compiles every function (WasmKit checks types only when it compiles), links WASI and
    /// the host API as the container will, and instantiates — nothing runs (a start section
    /// would: the intake check refuses none, WasmKit runs it at instantiation, and the host
    /// functions here refuse to be called).
    public static func validate(_ wasm: Data) throws {
        let module = try parseWasm(bytes: Array(wasm))
        let engine = Engine(configuration: EngineConfiguration(compilationMode: .eager))
        let store = Store(engine: engine)
        try WASIBridgeToHost(fileSystem: .host()).runAndClose { wasi in
            var imports = Imports()
            wasi.link(to: &imports, store: store)
            for (name, arity) in WasmPayloadCheck.hostFunctions {
                imports.define(
                    module: "rampart", name: name,
                    Function(store: store, parameters: Array(repeating: .i32, count: arity), results: [.i32]) { _, _ in
                        throw DeviceError(code: "validation", message: "a host function was called while validating")
                    })
            }
            _ = try module.instantiate(store: store, imports: imports)
        }
    }
}
