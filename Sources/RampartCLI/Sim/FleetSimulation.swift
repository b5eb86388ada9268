import Crypto
public import Foundation
import HeapModule
import NIOHTTP1
public import RampartModel
public import RampartPKI
import RampartTUF
import Synchronization

/// A virtual fleet in one process: N software-DICE devices, enrolled and claimed in bulk,
/// then each doing what `rampartd` does on jittered schedules — attest, renew at half the
/// certificate's life, check for updates at the interval the service asks for, download
/// a new deployment's targets (checked against their TUF hashes), report failures.
///
/// Time runs `timeScale` times faster for the devices than for the wall clock, so a
/// one-minute run covers an hour of fleet life at 60. A fixed pool of workers (the
/// concurrency) takes the next due device from a heap, so 100,000 devices cost 100,000
/// heap entries, not 100,000 waiting tasks; when the server cannot keep up, the schedule
/// lag grows and is reported.
public struct FleetSimulation: Sendable {
    public struct Settings: Sendable {
        public var devices: Int
        /// Requests in flight at once.
        public var concurrency = 64
        /// Wall seconds over which the devices' first attestations are spread; 0 is every
        /// device at once, as after an outage.
        public var ramp: Double = 10
        /// Wall seconds the fleet runs after the ramp.
        public var duration: Double = 60
        /// Device seconds per wall second.
        public var timeScale: Double = 60
        /// The chance that a device reports a failure after an update check.
        public var reportChance = 0.05
        /// The longest one request may take.
        public var timeout: Duration = .seconds(60)

        public init(devices: Int) { self.devices = devices }
    }

    /// Where the fleet lives and who it belongs to.
    public struct Fleet: Sendable {
        public var server: String
        public var rootPEM: String
        /// A token that may claim devices into `group` (a Tenant Administrator's).
        public var token: String
        public var tenant: TenantID
        public var group: DeviceGroupID
        public var manufacturer: CertificateAuthority
        /// The published release the devices run: its version and runtime measurement.
        public var version: String
        public var runtime: [UInt8]

        public init(
            server: String, rootPEM: String, token: String, tenant: TenantID, group: DeviceGroupID, manufacturer: CertificateAuthority,
            version: String, runtime: [UInt8]
        ) {
            self.server = server
            self.rootPEM = rootPEM
            self.token = token
            self.tenant = tenant
            self.group = group
            self.manufacturer = manufacturer
            self.version = version
            self.runtime = runtime
        }
    }

    public let settings: Settings
    public let fleet: Fleet
    /// Progress lines (to standard error in the CLI).
    let progress: @Sendable (String) -> Void

    public init(settings: Settings, fleet: Fleet, progress: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.fleet = fleet
        self.progress = progress
    }

    public func run() async throws -> SimReport {
        let clock = ContinuousClock()
        let recorder = SimRecorder()
        let count = settings.devices

        // Enrolment: identities endorsed by the manufacturer, as on the factory line.
        var started = clock.now
        progress("enrolling \(count) software-DICE devices on \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let devices = try await VirtualDevice.fleet(
            count: count, manufacturer: fleet.manufacturer, runtime: fleet.runtime, version: fleet.version
        ) { [progress] done in progress("  enrolled \(done)/\(count)") }
        let enrolSeconds = (clock.now - started).seconds

        // Claim: every record into the group, over one keep-alive connection pool.
        started = clock.now
        progress("claiming \(count) devices into group \(fleet.group)")
        let claimed = try await claim(devices, recorder: recorder)
        let claimSeconds = (clock.now - started).seconds
        guard !claimed.isEmpty else {
            throw CLIError("no device could be claimed: \(recorder.figures().errors.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))")
        }

        // The fleet's life.
        progress("running \(claimed.count) devices: first attestations over \(settings.ramp) s, then \(settings.duration) s at \(settings.timeScale)× device time")
        let schedule = Schedule()
        let runStart = clock.now
        var generator = SystemRandomNumberGenerator()
        for index in claimed {
            let offset = settings.ramp > 0 ? Double.random(in: 0..<settings.ramp, using: &generator) : 0
            await schedule.push(Entry(due: runStart + .seconds(offset), device: index, state: DeviceLife()))
        }
        let end = runStart + .seconds(settings.ramp + settings.duration)
        let attested = Counter()
        let everyoneAttested = Counter()
        let reports = Counter()
        let reporter = Task { [progress] in
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(2))
                let counts = recorder.counts
                let line = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  ")
                progress(String(format: "  %6.1f s  devices attested %d/%d  %@  failed %d  in flight %d",
                    (clock.now - runStart).seconds, attested.value, claimed.count, line, recorder.failures, recorder.inFlight))
            }
        }
        defer { reporter.cancel() }
        let marker = "rampart_sim_" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let life = Life(
            simulation: self, devices: devices, recorder: recorder, attested: attested, total: claimed.count,
            everyoneAttested: everyoneAttested, runStart: runStart, reports: reports, marker: marker, component: ComponentID.random())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, settings.concurrency) {
                group.addTask {
                    while let entry = await schedule.next(until: end) {
                        if entry.due > clock.now { try await Task.sleep(until: entry.due, clock: clock) }
                        recorder.lag(clock.now - entry.due)
                        var state = entry.state
                        let due = await life.step(entry.device, &state)
                        await schedule.push(Entry(due: due, device: entry.device, state: state))
                    }
                }
            }
            try await group.waitForAll()
        }
        let runSeconds = (clock.now - runStart).seconds
        let allAttested = everyoneAttested.value > 0 ? Double(everyoneAttested.value) / 1_000_000 : nil
        let figures = recorder.figures()
        let stored = try await storedReports(marker: marker, acknowledged: reports.value)
        return SimReport(
            server: fleet.server, devices: count, claimed: claimed.count, concurrency: settings.concurrency,
            timeScale: settings.timeScale, enrolSeconds: enrolSeconds, claimSeconds: claimSeconds, allAttestedSeconds: allAttested,
            projectedMillionSeconds: allAttested.map { $0 * 1_000_000 / Double(claimed.count) }, runSeconds: runSeconds,
            operations: figures.operations, errors: figures.errors, scheduleLag: figures.lag,
            reportsAcknowledged: reports.value, reportsStored: stored)
    }

    /// Claims the devices, `concurrency` at a time; the indices of those claimed.
    private func claim(_ devices: [VirtualDevice], recorder: SimRecorder) async throws -> [Int] {
        try await APIClient.with(server: fleet.server, token: fleet.token, trustRootPEM: fleet.rootPEM, timeout: settings.timeout) { client in
            try await withThrowingTaskGroup(of: Int?.self) { group in
                var next = 0
                var claimed: [Int] = []
                func add() {
                    let index = next
                    next += 1
                    let request = ClaimDeviceRequest(record: devices[index].record, deviceGroupId: fleet.group)
                    group.addTask { [fleet] in
                        do {
                            _ = try await recorder.time("claim") { try await client.claimDevice(request, tenant: fleet.tenant) }
                            return index
                        } catch {
                            return nil
                        }
                    }
                }
                while next < min(devices.count, settings.concurrency) { add() }
                while let result = try await group.next() {
                    if let result { claimed.append(result) }
                    if (claimed.count % 5000) == 0, result != nil { progress("  claimed \(claimed.count)/\(devices.count)") }
                    if next < devices.count { add() }
                }
                return claimed.sorted()
            }
        }
    }

    /// Reports the service stored for this run, read back from its buckets: this run's
    /// reports name a frame of their own (`marker`), so they fall in buckets of their own.
    private func storedReports(marker: String, acknowledged: Int) async throws -> Int {
        guard acknowledged > 0 else { return 0 }
        return try await APIClient.with(server: fleet.server, token: fleet.token, trustRootPEM: fleet.rootPEM) { client in
            try await client.errorBuckets(tenant: fleet.tenant, since: "1d")
                .filter { $0.frames.first == marker }
                .reduce(0) { $0 + $1.reports }
        }
    }
}

/// What one device remembers between its steps.
struct DeviceLife: Sendable {
    var credential: DeviceSession.Credential?
    var renewAt: ContinuousClock.Instant?
    var nextCheck: ContinuousClock.Instant?
    var deployment: DeploymentID?
    /// Whether it has checked for updates since it came up.
    var checked = false
    var failures = 0

    /// A device coming up attests and checks for updates once whatever the time: the run
    /// ends only after every device has (unless a step failed).
    var comingUp: Bool { failures == 0 && (credential == nil || !checked) }
}

private struct Entry: Comparable, Sendable {
    var due: ContinuousClock.Instant
    var device: Int
    var state: DeviceLife
    static func < (a: Entry, b: Entry) -> Bool { a.due < b.due }
    static func == (a: Entry, b: Entry) -> Bool { a.due == b.due && a.device == b.device }
}

/// The devices waiting for their next step, soonest first. Devices still coming up (see
/// `DeviceLife.comingUp`) wait apart and are taken even after the end, so the storm of
/// first attestations and checks completes however long it takes.
private actor Schedule {
    private var settled = Heap<Entry>()
    private var comingUp = Heap<Entry>()

    func push(_ entry: Entry) {
        if entry.state.comingUp { comingUp.insert(entry) } else { settled.insert(entry) }
    }

    func next(until end: ContinuousClock.Instant) -> Entry? {
        let due = settled.min.flatMap { $0.due <= end ? $0.due : nil }
        switch (comingUp.min?.due, due) {
        case (nil, nil): return nil
        case (_?, nil): return comingUp.removeMin()
        case (nil, _?): return settled.removeMin()
        case (let a?, let b?): return a <= b ? comingUp.removeMin() : settled.removeMin()
        }
    }
}

/// A number tasks add to at once (counts of devices, reports).
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    @discardableResult func add(_ amount: Int = 1) -> Int { count.withLock { $0 += amount; return $0 } }
    func set(_ value: Int) { count.withLock { $0 = value } }
}

/// One step of a device's life: attest or renew when due, else check for updates (and
/// download, and perhaps report a failure). Returns when the device is next due.
private struct Life: Sendable {
    let simulation: FleetSimulation
    let devices: [VirtualDevice]
    let recorder: SimRecorder
    let attested: Counter
    let total: Int
    /// Microseconds from the run's start until every device had attested, once they have.
    let everyoneAttested: Counter
    let runStart: ContinuousClock.Instant
    /// Reports the service acknowledged.
    let reports: Counter
    /// The top frame of this run's reports.
    let marker: String
    /// The app this run's reports blame.
    let component: ComponentID

    var settings: FleetSimulation.Settings { simulation.settings }
    var fleet: FleetSimulation.Fleet { simulation.fleet }

    func wall(_ deviceSeconds: Double) -> Duration { .seconds(deviceSeconds / settings.timeScale) }

    func step(_ index: Int, _ state: inout DeviceLife) async -> ContinuousClock.Instant {
        let clock = ContinuousClock()
        let device = devices[index]
        let now = clock.now
        if state.credential == nil || state.renewAt.map({ now >= $0 }) == true {
            let first = state.credential == nil
            do {
                let credential = try await recorder.time(first ? "attest" : "renew") {
                    try await DeviceSession.attest(server: fleet.server, rootPEM: fleet.rootPEM, monitor: device.monitor, timeout: settings.timeout)
                }
                let life = credential.result.expiresAt.timeIntervalSinceNow
                state.credential = credential
                state.renewAt = clock.now + wall(life / 2)
                state.failures = 0
                if first {
                    if attested.add() == total { everyoneAttested.set(Int(SimRecorder.microseconds(clock.now - runStart))) }
                    // As rampartd does when it comes up: attest, then check for updates.
                    state.nextCheck = clock.now
                }
            } catch {
                return retry(&state)
            }
            return min(state.renewAt!, state.nextCheck!)
        }
        guard let credential = state.credential else { return retry(&state) }
        do {
            let contact = try await APIClient.with(
                server: fleet.server, token: nil, trustRootPEM: fleet.rootPEM, timeout: settings.timeout, credential: credential
            ) { client in
                let check = try await recorder.time("update-check") { try await client.updateCheck() }
                if let deployment = check.deploymentId, deployment != state.deployment, let repository = check.repositoryPath {
                    try await recorder.time("download") { try await download(repository, client) }
                    state.deployment = deployment
                }
                if Double.random(in: 0..<1) < settings.reportChance {
                    try await recorder.time("report") { try await report(device, client) }
                }
                return check.nextContactAfter
            }
            state.failures = 0
            state.checked = true
            state.nextCheck = clock.now + wall(Double(contact) * Double.random(in: 0.8..<1.2))
        } catch {
            return retry(&state)
        }
        return min(state.renewAt!, state.nextCheck!)
    }

    /// After a failure: again in one to three wall seconds, a little later each time.
    func retry(_ state: inout DeviceLife) -> ContinuousClock.Instant {
        state.failures += 1
        return ContinuousClock().now + .seconds(Double.random(in: 1..<3) * Double(min(state.failures, 5)))
    }

    /// timestamp → snapshot → targets → every target, each target checked against its hash.
    func download(_ repository: String, _ client: APIClient) async throws {
        func metadata(_ file: String) async throws -> JSONValue {
            let data = try await client.send(.GET, "\(repository)/metadata/\(file)", body: nil).1
            return try SignedEnvelope(parsing: data, limit: 1 << 20).signed
        }
        let timestamp = try TimestampMetadata(json: try await metadata("timestamp.json"))
        let snapshot = try SnapshotMetadata(json: try await metadata("\(timestamp.snapshot.version).snapshot.json"))
        let targets = try TargetsMetadata(json: try await metadata("\(snapshot.targets.version).targets.json"))
        for (path, target) in targets.targets {
            let bytes = try await client.send(.GET, "\(repository)/targets/\(target.sha256).\(path)", body: nil, limit: target.length).1
            guard bytes.count == target.length, SHA256.hash(data: bytes).hexString == target.sha256 else {
                throw CLIError("target \(path) does not match its metadata")
            }
        }
    }

    func report(_ device: VirtualDevice, _ client: APIClient) async throws {
        let batch = FailureReportBatch(reports: [
            FailureReport(
                deviceId: device.id, time: Date(), eventType: .unplanned, eventClass: .application, category: .crash,
                componentId: component, systemSoftwareVersion: fleet.version, frames: [marker, "main"], details: "Trap: unreachable (simulated by rampart sim)")
        ])
        let receipt: FailureReportReceipt = try await client.post("/v1/device/reports", batch)
        reports.add(receipt.accepted + receipt.duplicates)
    }
}
