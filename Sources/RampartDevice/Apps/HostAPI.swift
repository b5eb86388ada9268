public import Foundation
import Logging
public import RampartImage
import RampartModel
import WasmKit

/// An HTTPS request an app makes through `rampart_https_request`.
public struct AppHTTPSRequest: Sendable {
    public var method: String
    public var url: URL
    public var body: [UInt8]
    /// Present the device's current certificate (mutual TLS); the key stays in the runtime.
    public var deviceAuthentication: Bool

    public init(method: String, url: URL, body: [UInt8] = [], deviceAuthentication: Bool) {
        self.method = method
        self.url = url
        self.body = body
        self.deviceAuthentication = deviceAuthentication
    }
}

public struct AppHTTPSResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// The runtime's HTTPS client for apps, given only requests the manifest allows.
public protocol AppNetwork: Sendable {
    func send(_ request: AppHTTPSRequest) async throws -> AppHTTPSResponse
}

/// Why a host call failed; the number is what the app sees (rampart.h's `RAMPART_E…`).
enum HostFailure: Error {
    case denied, invalid, notFound, tooBig, io, timedOut, busy

    var code: Int32 {
        switch self {
        case .denied: -1
        case .invalid: -2
        case .notFound: -3
        case .tooBig: -4
        case .io: -5
        case .timedOut: -6
        case .busy: -7
        }
    }
}

/// One call's arguments and the caller's memory, with every pointer checked against it.
struct HostCall {
    let args: [Value]
    let memory: Memory

    func u32(_ index: Int) -> UInt32 { args[index].i32 }
    func int(_ index: Int) -> Int { Int(Int32(bitPattern: args[index].i32)) }

    func bytes(_ pointer: Int, _ length: Int, limit: Int = 1 << 20) throws -> [UInt8] {
        let start = UInt64(u32(pointer)), count = UInt64(u32(length))
        guard count <= limit else { throw HostFailure.tooBig }
        guard start + count <= UInt64(memory.byteCount) else { throw HostFailure.invalid }
        return memory.withUnsafeBufferPointer(offset: UInt(start), count: Int(count)) { Array($0) }
    }

    func string(_ pointer: Int, _ length: Int) throws -> String {
        guard let text = String(validating: try bytes(pointer, length, limit: 4096), as: UTF8.self) else { throw HostFailure.invalid }
        return text
    }

    /// Copies as much of `data` as fits in the buffer `args[pointer]` of `args[capacity]` bytes.
    func write(_ data: [UInt8], to pointer: Int, capacity: Int) throws {
        let start = UInt64(u32(pointer)), room = UInt64(u32(capacity))
        guard start + room <= UInt64(memory.byteCount) else { throw HostFailure.invalid }
        let count = min(Int(room), data.count)
        guard count > 0 else { return }
        memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: count) { raw in
            data.withUnsafeBytes { raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
        }
    }

    func store(_ value: UInt32, at pointer: Int) throws {
        let start = UInt64(u32(pointer))
        guard start + 4 <= UInt64(memory.byteCount) else { throw HostFailure.invalid }
        memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: 4) {
            $0.storeBytes(of: value.littleEndian, toByteOffset: 0, as: UInt32.self)
        }
    }
}

/// The `rampart` import module: the host API of rampart.h. Each call first checks the
/// manifest; an undeclared capability is `RAMPART_EDENIED`, logged and counted.
struct HostAPI {
    let manifest: AppManifest
    let environment: AppEnvironment
    let control: AppControl
    let router: any AppMessageRouter

    /// The longest an app may defer one update with a single call.
    static let maximumDeferral: TimeInterval = 24 * 3600

    private var capabilities: AppManifest.Capabilities { manifest.capabilities }
    private var board: any PeripheralProvider { environment.peripherals }

    private func deny(_ capability: String, _ detail: String) -> HostFailure {
        control.recordDenial(capability)
        environment.logger.warning(
            "denied: \(detail)", metadata: ["app": "\(manifest.name)", "capability": "\(capability)"])
        return .denied
    }

    private func hardware<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as HostFailure {
            throw failure
        } catch {
            environment.logger.info("peripheral error: \(error)", metadata: ["app": "\(manifest.name)"])
            throw HostFailure.io
        }
    }

    func link(into imports: inout Imports, store: Store, prologue: @escaping (borrowing Caller) throws -> Memory) {
        let calls: [String: (HostCall) throws -> Int32] = [
            "event_wait": eventWait,
            "system_events_subscribe": subscribe,
            "update_defer": deferUpdate,
            "gpio_set": gpioSet,
            "gpio_get": gpioGet,
            "uart_write": uartWrite,
            "uart_read": uartRead,
            "i2c_transfer": i2cTransfer,
            "spi_transfer": spiTransfer,
            "adc_read": adcRead,
            "pwm_set": pwmSet,
            "https_request": httpsRequest,
            "app_send": appSend,
        ]
        for (name, arity) in WasmPayloadCheck.hostFunctions {
            guard let body = calls[name] else { preconditionFailure("rampart.\(name) has no implementation") }
            let function = Function(store: store, parameters: Array(repeating: .i32, count: arity), results: [.i32]) { caller, args in
                let memory = try prologue(caller)
                do {
                    return [.i32(UInt32(bitPattern: try body(HostCall(args: args, memory: memory))))]
                } catch let failure as HostFailure {
                    return [.i32(UInt32(bitPattern: failure.code))]
                }
            }
            imports.define(module: "rampart", name: name, function)
        }
    }

    // MARK: Events and updates

    /// `(timeout_ms, buf, cap, len*)`: the next event's kind (0 when none came in time), its
    /// payload in `buf` and the payload's full length in `*len`. A negative timeout waits.
    func eventWait(_ call: HostCall) throws -> Int32 {
        let timeout = call.int(0)
        // Check the buffers first: a bad pointer must not cost the app its event.
        try call.write([], to: 1, capacity: 2)
        try call.store(0, at: 3)
        guard let event = try control.next(timeout: timeout < 0 ? nil : Double(timeout) / 1000) else { return 0 }
        let payload = event.payload
        try call.write(payload, to: 1, capacity: 2)
        try call.store(UInt32(payload.count), at: 3)
        return event.kind
    }

    func subscribe(_ call: HostCall) throws -> Int32 {
        guard capabilities.systemEventNotifications == true else {
            throw deny("SystemEventNotifications", "system event notifications")
        }
        control.subscribeToSystemEvents()
        return 0
    }

    /// `(minutes)`: put the pending update off by up to 24 h from now.
    func deferUpdate(_ call: HostCall) throws -> Int32 {
        guard capabilities.softwareUpdateDeferral == true else { throw deny("SoftwareUpdateDeferral", "update deferral") }
        let minutes = call.int(0)
        guard (1...Int(Self.maximumDeferral / 60)).contains(minutes) else { throw HostFailure.invalid }
        control.deferUpdate(until: Date().addingTimeInterval(Double(minutes) * 60))
        return 0
    }

    // MARK: Peripherals

    private func requirePin(_ pin: Int) throws {
        guard capabilities.gpio?.contains(pin) == true else { throw deny("Gpio", "GPIO \(pin)") }
    }

    func gpioSet(_ call: HostCall) throws -> Int32 {
        try requirePin(call.int(0))
        try hardware { try board.gpioSet(pin: call.int(0), high: call.u32(1) != 0) }
        return 0
    }

    func gpioGet(_ call: HostCall) throws -> Int32 {
        try requirePin(call.int(0))
        return try hardware { try board.gpioGet(pin: call.int(0)) ? 1 : 0 }
    }

    private func uart(_ call: HostCall) throws -> String {
        let name = try call.string(0, 1)
        guard capabilities.uart?.contains(name) == true else { throw deny("Uart", "UART \(name)") }
        return name
    }

    func uartWrite(_ call: HostCall) throws -> Int32 {
        let name = try uart(call)
        let data = try call.bytes(2, 3, limit: 65_536)
        return Int32(try hardware { try board.uartWrite(name, data) })
    }

    func uartRead(_ call: HostCall) throws -> Int32 {
        let name = try uart(call)
        let data = try hardware { try board.uartRead(name, limit: Int(min(call.u32(3), 65_536))) }
        try call.write(data, to: 2, capacity: 3)
        return Int32(data.count)
    }

    func i2cTransfer(_ call: HostCall) throws -> Int32 {
        let bus = try call.string(0, 1)
        guard capabilities.i2cMaster?.contains(bus) == true else { throw deny("I2cMaster", "I2C bus \(bus)") }
        let address = call.int(2)
        guard (0...0x7f).contains(address) else { throw HostFailure.invalid }
        let write = try call.bytes(3, 4, limit: 4096)
        let readCount = Int(call.u32(6))
        guard readCount <= 4096 else { throw HostFailure.tooBig }
        let read = try hardware { try board.i2cTransfer(bus: bus, address: address, write: write, readCount: readCount) }
        try call.write(read, to: 5, capacity: 6)
        return Int32(read.count)
    }

    func spiTransfer(_ call: HostCall) throws -> Int32 {
        let bus = try call.string(0, 1)
        guard capabilities.spiMaster?.contains(bus) == true else { throw deny("SpiMaster", "SPI bus \(bus)") }
        let sent = try call.bytes(2, 4, limit: 4096)
        let received = try hardware { try board.spiTransfer(bus: bus, sent) }
        try call.write(received, to: 3, capacity: 4)
        return Int32(received.count)
    }

    func adcRead(_ call: HostCall) throws -> Int32 {
        let channel = call.int(0)
        guard capabilities.adc?.contains(channel) == true else { throw deny("Adc", "ADC channel \(channel)") }
        return Int32(try hardware { try board.adcRead(channel: channel) })
    }

    func pwmSet(_ call: HostCall) throws -> Int32 {
        let channel = call.int(0)
        guard capabilities.pwm?.contains(channel) == true else { throw deny("Pwm", "PWM channel \(channel)") }
        try hardware { try board.pwmSet(channel: channel, periodNanoseconds: call.u32(1), dutyNanoseconds: call.u32(2)) }
        return 0
    }

    // MARK: Network and other apps

    /// The `flags` bit asking for the device's certificate.
    static let deviceAuthenticationFlag: UInt32 = 1
    static let httpsTimeout: TimeInterval = 30

    /// `(method, mlen, url, ulen, body, blen, flags, resp, cap, resp_len*)`: the HTTP status;
    /// the response body (up to `cap` bytes) in `resp` and its full length in `*resp_len`.
    func httpsRequest(_ call: HostCall) throws -> Int32 {
        let method = try call.string(0, 1).uppercased()
        let urlText = try call.string(2, 3)
        guard ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"].contains(method),
              let url = URL(string: urlText), url.scheme?.lowercased() == "https", let host = url.host?.lowercased(),
              url.user == nil
        else { throw HostFailure.invalid }
        let allowed = (capabilities.allowedConnections ?? []).map { $0.lowercased() }
        guard allowed.contains(host) else { throw deny("AllowedConnections", "connection to \(host)") }
        let deviceAuthentication = call.u32(6) & Self.deviceAuthenticationFlag != 0
        if deviceAuthentication {
            guard let tenant = capabilities.deviceAuthentication else {
                throw deny("DeviceAuthentication", "device authentication to \(host)")
            }
            guard tenant.lowercased() == environment.tenantID?.description.lowercased() else {
                throw deny("DeviceAuthentication", "device authentication for tenant \(tenant), not this device's")
            }
        }
        let body = try call.bytes(4, 5)
        guard let network = environment.network else { throw HostFailure.io }
        let request = AppHTTPSRequest(method: method, url: url, body: body, deviceAuthentication: deviceAuthentication)
        let outcome = try Blocking.wait(timeout: Self.httpsTimeout, control: control) { try await network.send(request) }
        switch outcome {
        case nil:
            throw HostFailure.timedOut
        case .failure(let error)?:
            environment.logger.info("HTTPS request failed: \(error)", metadata: ["app": "\(manifest.name)", "host": "\(host)"])
            throw HostFailure.io
        case .success(let response)?:
            try call.write(response.body, to: 7, capacity: 8)
            try call.store(UInt32(clamping: response.body.count), at: 9)
            return Int32(clamping: response.status)
        }
    }

    /// `(component, clen, data, len)`: a message to another app, when each names the other in
    /// `AllowedApplicationConnections`.
    func appSend(_ call: HostCall) throws -> Int32 {
        guard let target = ComponentID(try call.string(0, 1)) else { throw HostFailure.invalid }
        let data = try call.bytes(2, 3, limit: 65_536)
        guard (capabilities.allowedApplicationConnections ?? []).contains(where: { ComponentID($0) == target }) else {
            throw deny("AllowedApplicationConnections", "message to \(target)")
        }
        let status = router.send(from: manifest, to: target, data: data)
        if status == HostFailure.denied.code { throw deny("AllowedApplicationConnections", "message to \(target), which does not accept it") }
        return status
    }
}

/// Runs async work from an app's thread, which must block for it.
enum Blocking {
    private final class Box<T: Sendable>: @unchecked Sendable {
        var value: Result<T, any Error>?
    }

    /// The result, or nil after `timeout` (the work is cancelled); throws at once when the
    /// app is forced off meanwhile.
    static func wait<T: Sendable>(
        timeout: TimeInterval, control: AppControl, _ work: @escaping @Sendable () async throws -> T
    ) throws -> Result<T, any Error>? {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            do { box.value = .success(try await work()) } catch { box.value = .failure(error) }
            done.signal()
        }
        let deadline = DispatchTime.now() + timeout
        while done.wait(timeout: min(deadline, .now() + 0.1)) == .timedOut {
            if control.isForcedOff {
                task.cancel()
                throw AppForcedOff()
            }
            if DispatchTime.now() >= deadline {
                task.cancel()
                return nil
            }
        }
        return box.value
    }
}
