import Foundation
import RampartDevice
import RampartTestSupport
import Testing

/// The Linux provider where this machine can exercise it: a UART on a pseudo-terminal, the
/// ADC and PWM sysfs protocols on a directory shaped like them, and clear errors for GPIO,
/// I²C and SPI devices that do not exist here (no /dev/gpiochip*, i2c-dev or spidev).
@Suite struct LinuxPeripheralsTests {
    @Test func aUARTOnAPseudoTerminal() throws {
        var controller: Int32 = 0, device: Int32 = 0
        var name = [CChar](repeating: 0, count: 128)
        #expect(openpty(&controller, &device, &name, nil, nil) == 0)
        defer { close(controller); close(device) }
        let path = String(cString: name)
        let board = LinuxPeripherals(map: LinuxPeripheralMap(uarts: ["UART0": path]))
        #expect(try board.uartWrite("UART0", Array("ping".utf8)) == 4)
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = read(controller, &buffer, buffer.count)
        #expect(Array(buffer.prefix(max(0, count))) == Array("ping".utf8))
        #expect(try board.uartRead("UART0", limit: 16).isEmpty)
        _ = "pong".withCString { write(controller, $0, 4) }
        usleep(50_000)
        #expect(try board.uartRead("UART0", limit: 16) == Array("pong".utf8))
        #expect(throws: PeripheralError.self) { try board.uartWrite("UART1", [1]) }
    }

    @Test func adcAndPWMThroughSysfsFiles() throws {
        let root = try temporaryDirectory(prefix: "rampart-sysfs")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/iio", withIntermediateDirectories: true)
        try "2047\n".write(toFile: "\(root)/iio/in_voltage1_raw", atomically: true, encoding: .utf8)
        // A PWM chip whose channel 0 is exported already (the kernel makes these files).
        try FileManager.default.createDirectory(atPath: "\(root)/pwmchip0/pwm0", withIntermediateDirectories: true)
        for file in ["period", "duty_cycle", "enable"] { FileManager.default.createFile(atPath: "\(root)/pwmchip0/pwm0/\(file)", contents: nil) }
        let board = LinuxPeripherals(map: LinuxPeripheralMap(adc: "\(root)/iio", pwm: "\(root)/pwmchip0"))
        #expect(try board.adcRead(channel: 1) == 2047)
        #expect(throws: PeripheralError.self) { try board.adcRead(channel: 2) }
        try board.pwmSet(channel: 0, periodNanoseconds: 20_000, dutyNanoseconds: 5_000)
        func read(_ file: String) throws -> String { try String(contentsOfFile: "\(root)/pwmchip0/pwm0/\(file)", encoding: .utf8) }
        #expect(try read("period") == "20000" && read("duty_cycle") == "5000" && read("enable") == "1")
        #expect(throws: PeripheralError.self) { try board.pwmSet(channel: 0, periodNanoseconds: 10, dutyNanoseconds: 20) }
        // Channel 1 is not exported and this directory has no export file to do it.
        #expect(throws: PeripheralError.self) { try board.pwmSet(channel: 1, periodNanoseconds: 10, dutyNanoseconds: 5) }
    }

    @Test func missingDevicesAreClearErrors() throws {
        let board = LinuxPeripherals(
            map: LinuxPeripheralMap(gpioChip: "/dev/gpiochip-absent", i2c: ["I2C0": "/dev/i2c-absent"], spi: ["SPI0": "/dev/spidev-absent"]))
        #expect { try board.gpioSet(pin: 4, high: true) } throws: { "\($0)".contains("GPIO 4 on /dev/gpiochip-absent: No such file") }
        #expect { try board.i2cTransfer(bus: "I2C0", address: 0x48, write: [0], readCount: 1) } throws: { "\($0)".contains("No such file") }
        #expect { try board.spiTransfer(bus: "SPI0", [1, 2]) } throws: { "\($0)".contains("No such file") }
        #expect { try LinuxPeripherals(map: LinuxPeripheralMap()).gpioGet(pin: 1) } throws: { "\($0)".contains("no GPIO chip is configured") }
    }
}
