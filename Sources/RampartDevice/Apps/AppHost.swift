public import Foundation
import RampartImage
@_spi(Fuzzing) import WasmKit  // Module.dropStartFunction, Store.resourceLimiter
import WasmKitWASI
import WASI

/// Checks a module the way the device will run it, before an install switches to it.
public enum AppHost {
    /// Compiles every function (WasmKit checks types only when it compiles), links WASI and
    /// the host API as the container will, and instantiates under the container's largest
    /// limits. Nothing of the app runs: its start section is dropped, WASI has no files and
    /// no standard streams, and the host functions here refuse to be called.
    public static func validate(_ wasm: Data) throws {
        var module = try parseWasm(bytes: Array(wasm))
        module.dropStartFunction()
        let engine = Engine(configuration: EngineConfiguration(compilationMode: .eager, fuelMetering: true))
        let store = Store(engine: engine)
        store.resourceLimiter = MemoryLimiter(limitBytes: 262_144 * 1024)
        store.fuel = Fuel(remaining: 1_000_000)
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw DeviceError(code: "validation", message: "cannot open /dev/null") }
        defer { close(null) }
        try WASIBridgeToHost(stdin: null, stdout: null, stderr: null).runAndClose { wasi in
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
