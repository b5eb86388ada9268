public import Foundation
import WasmKit
import WasmKitWASI
import WASI

/// Checks a module the way the device will run it, before an install switches to it.
public enum AppHost {
    /// Compiles every function (WasmKit checks types only when it compiles), links WASI and
    /// instantiates — nothing runs, since packages may not have a start section.
    public static func validate(_ wasm: Data) throws {
        let module = try parseWasm(bytes: Array(wasm))
        let engine = Engine(configuration: EngineConfiguration(compilationMode: .eager))
        let store = Store(engine: engine)
        try WASIBridgeToHost(fileSystem: .host()).runAndClose { wasi in
            var imports = Imports()
            wasi.link(to: &imports, store: store)
            _ = try module.instantiate(store: store, imports: imports)
        }
    }
}
