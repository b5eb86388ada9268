public import Foundation
import Synchronization

/// What an app's peripheral calls reach once its manifest has allowed them. The runtime
/// checks the capability; a provider only does the I/O.
public protocol PeripheralProvider: Sendable {
    func gpioSet(pin: Int, high: Bool) throws
    func gpioGet(pin: Int) throws -> Bool
    /// Writes all of `data`; returns the byte count.
    func uartWrite(_ uart: String, _ data: [UInt8]) throws -> Int
    /// Returns what has arrived, at most `limit` bytes, without waiting.
    func uartRead(_ uart: String, limit: Int) throws -> [UInt8]
    /// One combined write-then-read transaction with the device at `address` on `bus`.
    func i2cTransfer(bus: String, address: Int, write: [UInt8], readCount: Int) throws -> [UInt8]
    /// Full duplex: as many bytes come back as go out.
    func spiTransfer(bus: String, _ data: [UInt8]) throws -> [UInt8]
    /// A 12-bit sample (0…4095).
    func adcRead(channel: Int) throws -> Int
    func pwmSet(channel: Int, periodNanoseconds: UInt32, dutyNanoseconds: UInt32) throws
}

/// A peripheral operation the hardware could not do (no such line, bus or device).
public struct PeripheralError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A board in memory, for devices without the hardware and for tests, which drive the
/// inputs (UART receive, ADC samples, I²C registers) and read the outputs (GPIO levels,
/// UART transmit, PWM settings) the apps produced.
///
/// I²C devices are register files: a write's first byte sets the register pointer and
/// later bytes store from there; a read returns registers from the pointer on. SPI is a
/// loopback unless a responder is set for the bus.
public final class SimulatedBoard: PeripheralProvider {
    public struct PWMSetting: Sendable, Equatable {
        public var periodNanoseconds: UInt32
        public var dutyNanoseconds: UInt32
        public init(periodNanoseconds: UInt32, dutyNanoseconds: UInt32) {
            self.periodNanoseconds = periodNanoseconds
            self.dutyNanoseconds = dutyNanoseconds
        }
    }

    private struct State {
        var gpio: [Int: Bool] = [:]
        var uartTransmitted: [String: [UInt8]] = [:]
        var uartPending: [String: [UInt8]] = [:]
        var i2cRegisters: [String: [Int: [UInt8]]] = [:]
        var i2cPointer: [String: [Int: Int]] = [:]
        var spiResponders: [String: @Sendable ([UInt8]) -> [UInt8]] = [:]
        var adc: [Int: Int] = [:]
        var pwm: [Int: PWMSetting] = [:]
        var gpioChanges = 0
    }

    private let state = Mutex(State())

    public init() {}

    // MARK: What tests drive and read

    public func gpioLevel(_ pin: Int) -> Bool? { state.withLock { $0.gpio[pin] } }
    /// How many times any app changed a GPIO output level.
    public var gpioChanges: Int { state.withLock { $0.gpioChanges } }
    public func setInput(pin: Int, high: Bool) { state.withLock { $0.gpio[pin] = high } }
    public func uartTransmitted(_ uart: String) -> [UInt8] { state.withLock { $0.uartTransmitted[uart] ?? [] } }
    public func uartReceive(_ uart: String, _ bytes: [UInt8]) { state.withLock { $0.uartPending[uart, default: []] += bytes } }
    /// Puts a device with 256 registers at `address` on `bus`.
    public func attachI2CDevice(bus: String, address: Int, registers: [UInt8] = Array(repeating: 0, count: 256)) {
        state.withLock { $0.i2cRegisters[bus, default: [:]][address] = registers }
    }
    public func i2cRegisters(bus: String, address: Int) -> [UInt8]? { state.withLock { $0.i2cRegisters[bus]?[address] } }
    public func setSPIResponder(bus: String, _ responder: @escaping @Sendable ([UInt8]) -> [UInt8]) {
        state.withLock { $0.spiResponders[bus] = responder }
    }
    public func setADC(channel: Int, value: Int) { state.withLock { $0.adc[channel] = value } }
    public func pwm(_ channel: Int) -> PWMSetting? { state.withLock { $0.pwm[channel] } }

    // MARK: PeripheralProvider

    public func gpioSet(pin: Int, high: Bool) throws {
        state.withLock {
            if $0.gpio[pin] != high { $0.gpioChanges += 1 }
            $0.gpio[pin] = high
        }
    }

    public func gpioGet(pin: Int) throws -> Bool { state.withLock { $0.gpio[pin] ?? false } }

    public func uartWrite(_ uart: String, _ data: [UInt8]) throws -> Int {
        state.withLock { $0.uartTransmitted[uart, default: []] += data }
        return data.count
    }

    public func uartRead(_ uart: String, limit: Int) throws -> [UInt8] {
        state.withLock {
            let pending = $0.uartPending[uart] ?? []
            let taken = Array(pending.prefix(limit))
            $0.uartPending[uart] = Array(pending.dropFirst(taken.count))
            return taken
        }
    }

    public func i2cTransfer(bus: String, address: Int, write: [UInt8], readCount: Int) throws -> [UInt8] {
        try state.withLock { state in
            guard var registers = state.i2cRegisters[bus]?[address] else {
                throw PeripheralError("no device answers at address 0x\(String(address, radix: 16)) on \(bus)")
            }
            var pointer = state.i2cPointer[bus]?[address] ?? 0
            if let first = write.first {
                pointer = Int(first)
                for (offset, byte) in write.dropFirst().enumerated() { registers[(pointer + offset) % registers.count] = byte }
                state.i2cRegisters[bus]?[address] = registers
            }
            state.i2cPointer[bus, default: [:]][address] = pointer
            return (0..<readCount).map { registers[(pointer + $0) % registers.count] }
        }
    }

    public func spiTransfer(bus: String, _ data: [UInt8]) throws -> [UInt8] {
        let responder = state.withLock { $0.spiResponders[bus] }
        guard let responder else { return data }
        let answer = responder(data)
        return (0..<data.count).map { $0 < answer.count ? answer[$0] : 0 }
    }

    public func adcRead(channel: Int) throws -> Int { state.withLock { $0.adc[channel] ?? 0 } }

    public func pwmSet(channel: Int, periodNanoseconds: UInt32, dutyNanoseconds: UInt32) throws {
        guard dutyNanoseconds <= periodNanoseconds else {
            throw PeripheralError("a duty cycle of \(dutyNanoseconds) ns is longer than the period of \(periodNanoseconds) ns")
        }
        state.withLock { $0.pwm[channel] = PWMSetting(periodNanoseconds: periodNanoseconds, dutyNanoseconds: dutyNanoseconds) }
    }
}
