import CLinuxPeripherals
public import Foundation
import Synchronization

/// Which Linux devices back the names in app manifests (`<state-dir>/peripherals.json`).
/// GPIO pin N is line N of `gpioChip`; `adc` is an IIO device directory (channel N reads
/// `in_voltageN_raw`); `pwm` a PWM chip directory (channel N is `pwmN`, exported on first use).
public struct LinuxPeripheralMap: Codable, Sendable, Equatable {
    public var gpioChip: String?
    public var uarts: [String: String]
    public var i2c: [String: String]
    public var spi: [String: String]
    public var adc: String?
    public var pwm: String?

    public init(
        gpioChip: String? = nil, uarts: [String: String] = [:], i2c: [String: String] = [:], spi: [String: String] = [:],
        adc: String? = nil, pwm: String? = nil
    ) {
        self.gpioChip = gpioChip
        self.uarts = uarts
        self.i2c = i2c
        self.spi = spi
        self.adc = adc
        self.pwm = pwm
    }

    /// Every key is optional in the file.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        gpioChip = try container.decodeIfPresent(String.self, forKey: .gpioChip)
        uarts = try container.decodeIfPresent([String: String].self, forKey: .uarts) ?? [:]
        i2c = try container.decodeIfPresent([String: String].self, forKey: .i2c) ?? [:]
        spi = try container.decodeIfPresent([String: String].self, forKey: .spi) ?? [:]
        adc = try container.decodeIfPresent(String.self, forKey: .adc)
        pwm = try container.decodeIfPresent(String.self, forKey: .pwm)
    }
}

/// Peripherals on Linux character devices and sysfs: GPIO through the v2 line uAPI
/// (`/dev/gpiochipN`), UARTs as raw 115200-baud terminals, I²C through `I2C_RDWR`
/// (`/dev/i2c-N`), SPI through spidev, ADC through IIO, PWM through the PWM class.
public final class LinuxPeripherals: PeripheralProvider {
    public let map: LinuxPeripheralMap
    private struct Line { var fd: Int32; var output: Bool }
    private let lines = Mutex<[Int: Line]>([:])
    private let uarts = Mutex<[String: Int32]>([:])

    public init(map: LinuxPeripheralMap) { self.map = map }

    deinit {
        lines.withLock { for line in $0.values { close(line.fd) } }
        uarts.withLock { for fd in $0.values { close(fd) } }
    }

    private static func failure(_ what: String, _ code: Int32) -> PeripheralError {
        PeripheralError("\(what): \(String(cString: strerror(-code)))")
    }

    /// The pin's line, requested (again) in the direction asked for.
    private func line(_ pin: Int, output: Bool, initial: Bool = false) throws -> Int32 {
        guard let chip = map.gpioChip else { throw PeripheralError("no GPIO chip is configured (peripherals.json gpioChip)") }
        return try lines.withLock { lines in
            if let line = lines[pin], line.output || !output { return line.fd }
            if let old = lines[pin] { close(old.fd) }
            let fd = rp_gpio_request_line(chip, UInt32(pin), output ? 1 : 0, initial ? 1 : 0)
            guard fd >= 0 else { throw Self.failure("GPIO \(pin) on \(chip)", fd) }
            lines[pin] = Line(fd: fd, output: output)
            return fd
        }
    }

    public func gpioSet(pin: Int, high: Bool) throws {
        let fd = try line(pin, output: true, initial: high)
        let result = rp_gpio_set(fd, high ? 1 : 0)
        guard result >= 0 else { throw Self.failure("GPIO \(pin)", result) }
    }

    public func gpioGet(pin: Int) throws -> Bool {
        let fd = try line(pin, output: false)
        let result = rp_gpio_get(fd)
        guard result >= 0 else { throw Self.failure("GPIO \(pin)", result) }
        return result == 1
    }

    private func uart(_ name: String) throws -> Int32 {
        guard let path = map.uarts[name] else { throw PeripheralError("no device is configured for \(name)") }
        return try uarts.withLock { uarts in
            if let fd = uarts[name] { return fd }
            let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw PeripheralError("\(name) (\(path)): \(String(cString: strerror(errno)))") }
            var settings = termios()
            if tcgetattr(fd, &settings) == 0 {
                cfmakeraw(&settings)
                cfsetspeed(&settings, speed_t(B115200))
                tcsetattr(fd, TCSANOW, &settings)
            }
            uarts[name] = fd
            return fd
        }
    }

    public func uartWrite(_ uart: String, _ data: [UInt8]) throws -> Int {
        let fd = try self.uart(uart)
        var written = 0
        var stalls = 0
        while written < data.count {
            let count = data[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                written += count
            } else if errno == EAGAIN, stalls < 100 {
                stalls += 1
                usleep(1000)
            } else {
                throw PeripheralError("\(uart): \(String(cString: strerror(errno)))")
            }
        }
        return written
    }

    public func uartRead(_ uart: String, limit: Int) throws -> [UInt8] {
        let fd = try self.uart(uart)
        var buffer = [UInt8](repeating: 0, count: max(0, limit))
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            guard errno == EAGAIN else { throw PeripheralError("\(uart): \(String(cString: strerror(errno)))") }
            return []
        }
        return Array(buffer.prefix(count))
    }

    public func i2cTransfer(bus: String, address: Int, write: [UInt8], readCount: Int) throws -> [UInt8] {
        guard let device = map.i2c[bus] else { throw PeripheralError("no device is configured for \(bus)") }
        var received = [UInt8](repeating: 0, count: readCount)
        let result = received.withUnsafeMutableBufferPointer { rx in
            write.withUnsafeBufferPointer { tx in
                rp_i2c_transfer(device, UInt32(address), tx.baseAddress, tx.count, rx.baseAddress, rx.count)
            }
        }
        guard result >= 0 else { throw Self.failure("\(bus) (\(device)) address 0x\(String(address, radix: 16))", result) }
        return received
    }

    public func spiTransfer(bus: String, _ data: [UInt8]) throws -> [UInt8] {
        guard let device = map.spi[bus] else { throw PeripheralError("no device is configured for \(bus)") }
        var received = [UInt8](repeating: 0, count: data.count)
        let result = received.withUnsafeMutableBufferPointer { rx in
            data.withUnsafeBufferPointer { tx in rp_spi_transfer(device, tx.baseAddress, rx.baseAddress, tx.count) }
        }
        guard result >= 0 else { throw Self.failure("\(bus) (\(device))", result) }
        return received
    }

    public func adcRead(channel: Int) throws -> Int {
        guard let adc = map.adc else { throw PeripheralError("no ADC is configured (peripherals.json adc)") }
        let path = "\(adc)/in_voltage\(channel)_raw"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw PeripheralError("cannot read ADC channel \(channel) (\(path))") }
        return min(max(value, 0), 4095)
    }

    public func pwmSet(channel: Int, periodNanoseconds: UInt32, dutyNanoseconds: UInt32) throws {
        guard let chip = map.pwm else { throw PeripheralError("no PWM chip is configured (peripherals.json pwm)") }
        guard dutyNanoseconds <= periodNanoseconds else {
            throw PeripheralError("a duty cycle of \(dutyNanoseconds) ns is longer than the period of \(periodNanoseconds) ns")
        }
        let directory = "\(chip)/pwm\(channel)"
        func put(_ value: String, _ file: String) throws {
            guard let handle = FileHandle(forWritingAtPath: file) else {
                throw PeripheralError("cannot write \(file): \(String(cString: strerror(errno)))")
            }
            defer { try? handle.close() }
            try handle.write(contentsOf: Data(value.utf8))
        }
        if !FileManager.default.fileExists(atPath: directory) { try put("\(channel)", "\(chip)/export") }
        // The kernel refuses a duty cycle longer than the current period: shrink it first.
        try put("0", "\(directory)/duty_cycle")
        try put("\(periodNanoseconds)", "\(directory)/period")
        try put("\(dutyNanoseconds)", "\(directory)/duty_cycle")
        try put("1", "\(directory)/enable")
    }
}
