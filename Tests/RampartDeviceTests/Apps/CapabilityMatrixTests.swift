import Foundation
import RampartDevice
import RampartImage
import RampartModel
import Testing

/// Every capability: absent from the manifest, the host call is refused with
/// `RAMPART_EDENIED` (the app exits 99) and counted; present, it works (and the board or the
/// network saw it).
@Suite struct CapabilityMatrixTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var capability: String
        var granted: String
        var call: String
        var data: [(Int, String)] = []
        var expected: UInt32 = 100
        var testDescription: String { capability }
    }

    static let cases: [Case] = [
        Case(capability: "Gpio", granted: #"{"Gpio": [4]}"#, call: "(call $gpio_set (i32.const 4) (i32.const 1))"),
        Case(capability: "Uart", granted: #"{"Uart": ["UART0"]}"#,
             call: "(call $uart_write (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 2))",
             data: [(0, "UART0"), (16, "hi")], expected: 102),
        Case(capability: "I2cMaster", granted: #"{"I2cMaster": ["I2C0"]}"#,
             call: "(call $i2c_transfer (i32.const 0) (i32.const 4) (i32.const 72) (i32.const 16) (i32.const 2) (i32.const 32) (i32.const 1))",
             data: [(0, "I2C0"), (16, "\\10\\ab")], expected: 101),
        Case(capability: "SpiMaster", granted: #"{"SpiMaster": ["SPI0"]}"#,
             call: "(call $spi_transfer (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 32) (i32.const 3))",
             data: [(0, "SPI0"), (16, "abc")], expected: 103),
        Case(capability: "Adc", granted: #"{"Adc": [1]}"#, call: "(call $adc_read (i32.const 1))", expected: 100 + 1234),
        Case(capability: "Pwm", granted: #"{"Pwm": [2]}"#, call: "(call $pwm_set (i32.const 2) (i32.const 1000) (i32.const 250))"),
        Case(capability: "SystemEventNotifications", granted: #"{"SystemEventNotifications": true}"#,
             call: "(call $system_events_subscribe)"),
        Case(capability: "SoftwareUpdateDeferral", granted: #"{"SoftwareUpdateDeferral": true}"#,
             call: "(call $update_defer (i32.const 30))"),
        Case(capability: "AllowedConnections", granted: #"{"AllowedConnections": ["telemetry.example.com"]}"#,
             call: "(call $https_request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 37) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 128) (i32.const 64) (i32.const 200))",
             data: [(0, "GET"), (16, "https://telemetry.example.com/v1/ping")], expected: 100 + 204),
        Case(capability: "MutableStorage", granted: #"{"MutableStorage": {"SizeKB": 4}}"#,
             // path_open(3 = /storage, 0, "f", 1, O_CREAT, all rights, all rights, 0, &fd) → errno
             call: "(call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64))",
             data: [(0, "f")], expected: 100),
    ]

    @Test(arguments: cases)
    func deniedWhenAbsentWorksWhenPresent(_ probe: Case) async throws {
        let network = RecordingNetwork()
        let bench = try AppBench(network: network)
        bench.board.attachI2CDevice(bus: "I2C0", address: 72)
        bench.board.setADC(channel: 1, value: 1234)
        let wasm = try TestApp.exitWith(probe.call, data: probe.data)

        let absent = try TestApp.manifest(name: "without")
        let denied = try await bench.run(absent, wasm)
        let expectedDenial: UInt32 = probe.capability == "MutableStorage" ? 100 + 76 : 99  // WASI: ENOTCAPABLE
        #expect(denied == .exited(expectedDenial), "\(probe.capability) absent")
        #expect(bench.supervisor.status().first { $0.name == "without" }?.deniedCalls[probe.capability] == 1)
        #expect(network.requests.isEmpty)
        #expect(bench.board.gpioLevel(4) == nil && bench.board.uartTransmitted("UART0").isEmpty && bench.board.pwm(2) == nil)

        let present = try TestApp.manifest(name: "with", capabilities: probe.granted)
        #expect(try await bench.run(present, wasm) == .exited(probe.expected), "\(probe.capability) present")
        #expect(bench.supervisor.status().first { $0.name == "with" }?.deniedCalls.isEmpty == true)
        switch probe.capability {
        case "Gpio": #expect(bench.board.gpioLevel(4) == true)
        case "Uart": #expect(bench.board.uartTransmitted("UART0") == Array("hi".utf8))
        case "I2cMaster": #expect(bench.board.i2cRegisters(bus: "I2C0", address: 72)?[0x10] == 0xab)
        case "Pwm": #expect(bench.board.pwm(2) == SimulatedBoard.PWMSetting(periodNanoseconds: 1000, dutyNanoseconds: 250))
        case "AllowedConnections":
            #expect(network.requests.map(\.url.absoluteString) == ["https://telemetry.example.com/v1/ping"])
            #expect(network.requests.first?.deviceAuthentication == false)
        case "MutableStorage":
            #expect(FileManager.default.fileExists(atPath: bench.supervisor.environment.storageDirectory(present.componentId).appendingPathComponent("f").path))
        default: break
        }
        await bench.cleanUp()
    }

    /// A connection to a host not listed, even with other hosts allowed, is refused.
    @Test func connectionsOnlyToListedHosts() async throws {
        let network = RecordingNetwork()
        let bench = try AppBench(network: network)
        let wasm = try TestApp.exitWith(
            "(call $https_request (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 30) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 128) (i32.const 64) (i32.const 200))",
            data: [(0, "GET"), (16, "https://evil.example.net/steal")])
        let manifest = try TestApp.manifest(capabilities: #"{"AllowedConnections": ["telemetry.example.com"]}"#)
        #expect(try await bench.run(manifest, wasm) == .exited(99))
        #expect(network.requests.isEmpty)
        await bench.cleanUp()
    }

    /// Device authentication needs `DeviceAuthentication` naming this device's tenant; the
    /// network is then asked to present the device certificate.
    @Test func deviceAuthenticationNeedsTheDevicesTenant() async throws {
        let network = RecordingNetwork()
        let bench = try AppBench(network: network)
        let wasm = try TestApp.exitWith(
            "(call $https_request (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 37) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 128) (i32.const 64) (i32.const 200))",
            data: [(0, "POST"), (16, "https://telemetry.example.com/v1/ping")])
        let host = #""AllowedConnections": ["telemetry.example.com"]"#
        let without = try TestApp.manifest(name: "plain", capabilities: "{\(host)}")
        #expect(try await bench.run(without, wasm) == .exited(99))
        let foreign = try TestApp.manifest(name: "foreign", capabilities: #"{\#(host), "DeviceAuthentication": "\#(TenantID(uuid: UUID()))"}"#)
        #expect(try await bench.run(foreign, wasm) == .exited(99))
        #expect(network.requests.isEmpty)
        let own = try TestApp.manifest(name: "own", capabilities: #"{\#(host), "DeviceAuthentication": "\#(bench.tenant)"}"#)
        #expect(try await bench.run(own, wasm) == .exited(100 + 204))
        #expect(network.requests.map(\.deviceAuthentication) == [true])
        #expect(bench.supervisor.status().first { $0.name == "foreign" }?.deniedCalls["DeviceAuthentication"] == 1)
        await bench.cleanUp()
    }

    /// A message goes through only when both apps name each other.
    @Test func appMessagesNeedBothSides() async throws {
        let bench = try AppBench()
        let receiverID = ComponentID(uuid: UUID()), senderID = ComponentID(uuid: UUID())
        // The receiver waits for one event, however long the machine takes to send it; a
        // message (kind 4) sets GPIO 4; then it returns.
        let receiverWasm = try TestApp.module(body: """
            (if (i32.eq (call $event_wait (i32.const -1) (i32.const 0) (i32.const 64) (i32.const 128)) (i32.const 4))
              (then (drop (call $gpio_set (i32.const 4) (i32.const 1)))))
            """)
        let senderWasm = try TestApp.exitWith(
            "(call $app_send (i32.const 0) (i32.const 36) (i32.const 64) (i32.const 5))",
            data: [(0, receiverID.description), (64, "hello")])

        // Only the sender names the other: refused.
        let lonelyReceiver = try TestApp.manifest(name: "receiver", component: receiverID, capabilities: #"{"Gpio": [4]}"#)
        try bench.supervisor.start(AppDefinition(manifest: lonelyReceiver, wasm: receiverWasm))
        let sender = try TestApp.manifest(
            name: "sender", component: senderID, capabilities: #"{"AllowedApplicationConnections": ["\#(receiverID)"]}"#)
        #expect(try await bench.run(sender, senderWasm) == .exited(99))
        // The sender names nobody: refused too.
        let mute = try TestApp.manifest(name: "mute", component: ComponentID(uuid: UUID()))
        #expect(try await bench.run(mute, senderWasm) == .exited(99))
        #expect(await bench.supervisor.stop(receiverID) != nil)
        #expect(bench.board.gpioLevel(4) == nil)

        // Both name each other: delivered.
        let receiver = try TestApp.manifest(
            name: "receiver", component: receiverID,
            capabilities: #"{"Gpio": [4], "AllowedApplicationConnections": ["\#(senderID)"]}"#)
        try bench.supervisor.start(AppDefinition(manifest: receiver, wasm: receiverWasm))
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await bench.run(sender, senderWasm) == .exited(100))
        for _ in 0..<100 where bench.board.gpioLevel(4) != true { try await Task.sleep(for: .milliseconds(20)) }
        #expect(bench.board.gpioLevel(4) == true, "the receiver got the message")
        await bench.cleanUp()
    }
}
