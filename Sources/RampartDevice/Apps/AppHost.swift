public import Foundation
import RampartImage
import WasmKit
import WasmKitWASI
import WASI

/// Runs app modules with WasmKit under WASI preview 1: no preopened directories, no
/// environment, a fuel budget. Issue 5 grows this into the app container; here it is what
/// validates a module before an install and decides whether a new one starts healthy.
public enum AppHost {
    /// How a start ended.
    public enum Outcome: Sendable, Equatable {
        /// `_start` returned, or exited with 0.
        case exited
        /// Still running when its budget for the health window ran out: alive.
        case running
        case trapped(String)
        case exitedWithError(UInt32)
    }

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

    /// Starts the module and runs it until it returns or `fuel` is spent.
    public static func start(_ wasm: Data, name: String, fuel: UInt64 = 50_000_000) -> Outcome {
        do {
            let module = try parseWasm(bytes: Array(wasm))
            let engine = Engine(configuration: EngineConfiguration(fuelMetering: true))
            let store = Store(engine: engine)
            store.fuel = Fuel(remaining: fuel)
            // No preopened directory, no environment, no standard streams yet (issue 5 routes app output).
            let code = try WASIBridgeToHost(args: [name], fileSystem: .host()).runAndClose { wasi in
                var imports = Imports()
                wasi.link(to: &imports, store: store)
                return try wasi.start(try module.instantiate(store: store, imports: imports))
            }
            return code == 0 ? .exited : .exitedWithError(code)
        } catch let trap as Trap {
            // The first line names the trap; the wasm backtrace below it is for issue 6's reports.
            let first = String("\(trap)".prefix { $0 != "\n" })
            return first == "Trap: out of fuel" ? .running : .trapped(first)
        } catch {
            return .trapped("\(error)")
        }
    }
}
