import Crypto
import Foundation
import RampartDevice
import RampartModel
import RampartPKI

/// One device of a simulated fleet: a software-DICE identity that lives only in memory,
/// endorsed by the manufacturer CA as a factory station would, its security monitor
/// launched with the runtime measurement of a published release.
///
/// Everything a real device proves is real: the DeviceID certificate, the Alias
/// certificate over the measured runtime and the evidence signature. What is simulated is
/// the rest of the device (no apps run, downloads are only checked against their hash).
struct VirtualDevice: Sendable {
    let record: ProvisioningRecord
    let monitor: SecurityMonitor
    /// The device's software DICE, for a new launch (and so a new Alias certificate).
    let processor: DICESecurityProcessor
    var id: DeviceID { record.deviceId }

    static func make(manufacturer: CertificateAuthority, runtime: [UInt8], version: String) async throws -> VirtualDevice {
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = generator.next() }
        // Counters are never incremented by a simulated device; the path only says so if one ever is.
        let processor = DICESecurityProcessor(uds: try UniqueDeviceSecret(bytes: secret), countersPath: "/dev/null/rampart-sim-device")
        let record = try await Provisioning.record(for: processor, manufacturer: manufacturer, now: Date())
        let monitor = SecurityMonitor(processor: processor, softwareVersion: version)
        try await monitor.launch(runtime: runtime)
        return VirtualDevice(record: record, monitor: monitor, processor: processor)
    }

    /// `count` devices, made on every core, `progress` called now and then with how many are done.
    static func fleet(
        count: Int, manufacturer: CertificateAuthority, runtime: [UInt8], version: String,
        progress: @escaping @Sendable (Int) -> Void
    ) async throws -> [VirtualDevice] {
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return try await withThrowingTaskGroup(of: [VirtualDevice].self) { group in
            for worker in 0..<workers {
                let share = count / workers + (worker < count % workers ? 1 : 0)
                group.addTask {
                    var made: [VirtualDevice] = []
                    made.reserveCapacity(share)
                    for index in 0..<share {
                        made.append(try await make(manufacturer: manufacturer, runtime: runtime, version: version))
                        if worker == 0, index % 1000 == 999 { progress((index + 1) * workers) }
                    }
                    return made
                }
            }
            var all: [VirtualDevice] = []
            all.reserveCapacity(count)
            for try await made in group { all += made }
            return all
        }
    }
}
