import ArgumentParser
import Crypto
import Foundation
import RampartCLI
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import SwiftASN1
import X509
import UnixSignals
import Logging
import Synchronization

/// `rampartd`: the device runtime.
@main
struct RampartdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rampartd",
        abstract: "The Rampart device runtime: identity, measured launch, attestation.",
        discussion: """
            The device's identity lives in a security processor: a TPM 2.0 (--tpm at provisioning) \
            or a software DICE engine rooted in <state-dir>/uds (mode 0600). Only the security \
            monitor (`rampartd monitor`) opens it: at start it measures this executable, \
            <state-dir>/config.json and every image in <state-dir>/images into the processor, \
            then answers the runtime on <state-dir>/monitor.sock — identity, signed evidence, \
            counters, and nothing else. `rampartd run` starts a monitor and keeps the device \
            attested.
            """,
        subcommands: [ManufacturerCA.self, Provision.self, Identity.self, Monitor.self, Attest.self, Update.self, Run.self, InstallCapability.self]
    )
}

struct StateOptions: ParsableArguments {
    @Option(name: .customLong("state-dir"), help: "Where the device keeps its identity, certificates and settings.")
    var stateDirectory = "./rampartd-state"

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    var state: DeviceState { DeviceState(directory: stateDirectory) }

    func emit<T: Encodable>(_ value: T, _ human: String) throws {
        if json {
            let encoder = JSONEncoder.rampart
            encoder.outputFormatting.insert(.prettyPrinted)
            print(String(decoding: try encoder.encode(value), as: UTF8.self))
        } else {
            print(human)
        }
    }

    /// The device's security monitor: the one running on its socket when there is one (a
    /// second launch would reset the TPM's launch PCR under it), else one in this process
    /// that has measured this launch — after this process became the runtime the device
    /// boots (``SystemBoot``; with `bootTrial`, new system software on trial too).
    func launchedMonitor(socket: String? = nil, bootTrial: Bool = false) async throws -> any SecurityMonitorInterface {
        if let socket { return MonitorClient(socketPath: socket) }
        let running = MonitorClient(socketPath: state.socketPath)
        if FileManager.default.fileExists(atPath: state.socketPath), (try? await running.identity()) != nil { return running }
        try await bootSelectedRuntime(trials: bootTrial) { FileHandle.standardError.write(Data("rampartd: \($0)\n".utf8)) }
        let monitor = try state.securityMonitor()
        try await monitor.launch(state.launchComponents())
        return monitor
    }
}

extension StateOptions {
    /// Replaces this process with the runtime the device should run, unless it is that one.
    func bootSelectedRuntime(trials: Bool, log: (String) -> Void) async throws {
        var boot = SystemBoot(state: state)
        boot.reporter = (try? state.record()).map {
            FailureReporter(
                queue: ReportQueue(state: state), deviceId: $0.deviceId,
                systemSoftwareVersion: state.runningSystemSoftware(factoryVersion: runtimeVersion).version)
        }
        if let executable = try await boot.select(trials: trials, log: log) {
            log("starting \(executable)")
            try SystemBoot.exec(executable)
        }
    }
}

extension DeviceState {
    /// A security monitor for this process's runtime, labelled with the release it is: the
    /// installed one when it runs from a slot, else this build.
    func securityMonitor() throws -> SecurityMonitor {
        let running = runningSystemSoftware(factoryVersion: runtimeVersion)
        return SecurityMonitor(processor: try openProcessor(), softwareVersion: running.version, securityVersion: running.securityVersion)
    }
}

/// The runtime must start over into other system software (``SystemBoot`` picks which).
struct RestartRequired: Error {}

/// Set once this start has decided to restart, so the loop that did not decide does not act
/// on a boot record the other just changed.
let restartPending = Atomic<Bool>(false)

/// Attests; a refusal of new system software on trial in this very start fails the trial's
/// health check, so the runtime restarts into what ran before.
func attestOrFailTrial(state: DeviceState, _ attest: () async throws -> DeviceSession.Credential) async throws -> DeviceSession.Credential {
    if restartPending.load(ordering: .acquiring) { throw RestartRequired() }
    do {
        return try await attest()
    } catch let error as APIFailure where UpdateRequired.codes.contains(error.body.error) {
        if restartPending.load(ordering: .acquiring) { throw RestartRequired() }
        let boot = SystemBoot(state: state)
        guard boot.isAttemptInProgress() else { throw error }
        try boot.failAttempt(reason: "attestation_refused", detail: "\(error.body.message) [\(error.body.error)]")
        restartPending.store(true, ordering: .releasing)
        print("rampartd: the service refused the system software on trial (\(error.body.error)): rolling back")
        throw RestartRequired()
    }
}

/// The runtime's version, reported in attestation evidence. A release is trusted by the
/// service only when it published this version with this executable's SHA-256.
let runtimeVersion = "0.1.0"

struct ManufacturerCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manufacturer-ca",
        abstract: "Create a manufacturer CA (for a test line): ca.pem and ca.key (mode 0600) in --out.",
        discussion: "Give ca.pem to the Security Service (--manufacturer-ca) so it trusts devices this CA endorses.")
    @Option(help: "Directory to write ca.pem and ca.key.") var out: String
    @Option(help: "The CA's common name.") var name = "Rampart Manufacturing CA"

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let ca = try CertificateAuthority.makeRoot(commonName: name, now: Date())
        try ca.certificate.pemString.write(toFile: "\(out)/ca.pem", atomically: true, encoding: .utf8)
        try SecretFile.write(ca.privateKeyPEM, to: "\(out)/ca.key")
        print("Wrote \(out)/ca.pem and \(out)/ca.key (SHA-256 \(ca.certificate.sha256Fingerprint)).")
    }
}

struct Provision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the device identity and have the manufacturer CA endorse it.",
        discussion: """
            Software DICE (the default): creates the Unique Device Secret (refusing to replace one) \
            and certifies the DeviceID key derived from it. TPM (--tpm TCTI): certifies the TPM's \
            attestation key and adds the TPM's endorsement-key certificate. Either way the \
            manufacturer CA signs, as a factory station would, and the provisioning record is \
            written to <state-dir>/provisioning-record.json for `rampart device claim --record`.
            """)
    @OptionGroup var options: StateOptions
    @Option(name: .customLong("manufacturer-cert"), help: "The manufacturer CA certificate (PEM).") var manufacturerCertificate: String
    @Option(name: .customLong("manufacturer-key"), help: "The manufacturer CA private key (PEM).") var manufacturerKey: String
    @Option(help: "Use the TPM 2.0 behind this TCTI (e.g. device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321).")
    var tpm: String?

    func run() async throws {
        guard let certificatePEM = try? String(contentsOfFile: manufacturerCertificate, encoding: .utf8),
            let keyPEM = try? String(contentsOfFile: manufacturerKey, encoding: .utf8)
        else { throw ValidationError("cannot read the manufacturer CA certificate or key") }
        let manufacturer = try CertificateAuthority(certificatePEM: certificatePEM, privateKeyPEM: keyPEM)
        let configuration = DeviceState.ProcessorConfiguration(kind: tpm == nil ? .softwareDICE : .tpm2, tcti: tpm)
        let record = try await options.state.provision(configuration, manufacturer: manufacturer)
        try options.emit(
            record,
            """
            Provisioned device \(record.deviceId) (\(record.securityProcessor.rawValue))
            Provisioning record: \(options.state.recordPath)
            Claim it with: rampart device claim --record \(options.state.recordPath)
            """)
    }
}

struct Identity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the device ID and what a launch measures.")
    @OptionGroup var options: StateOptions

    struct Shown: Encodable {
        let identity: MonitorIdentity
        let certificateExpiresAt: Date?
    }

    func run() async throws {
        let identity = try await options.launchedMonitor().identity()
        let expiry = (try? String(contentsOfFile: options.state.certificatePath, encoding: .utf8))
            .flatMap { try? RampartPKI.certificates(fromPEMBundle: $0).first?.notValidAfter }
        try options.emit(
            Shown(identity: identity, certificateExpiresAt: expiry),
            """
            device id            \(identity.deviceId)
            security processor   \(identity.securityProcessor.rawValue)
            software version     \(identity.softwareVersion)
            measured launch      \(identity.measurements.map { "\($0.name) \($0.sha256)" }.joined(separator: "\n                     "))
            certificate expires  \(expiry.map { "\($0)" } ?? "no certificate yet: run rampartd attest")
            """)
    }
}

struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the security monitor: measure the launch, then serve the runtime on a socket.",
        discussion: """
            The only process that opens the security processor. Run it as its own user with the \
            state directory owned by that user to keep keys out of the runtime's reach. It \
            answers identity, evidence and counter requests on --socket (mode 0660: give the runtime's \
            user the socket's group) until stopped.
            """)
    @OptionGroup var options: StateOptions
    @Option(help: "The socket path (default <state-dir>/monitor.sock).") var socket: String?
    @Option(help: "Stop when the process with this ID is no longer the parent (`rampartd run` passes its own).")
    var parent: Int32?

    func run() async throws {
        if let parent {
            // A runtime killed outright (a power cut rehearsed, the OOM killer) must not leave
            // its monitor behind to answer the next start.
            Task.detached {
                while getppid() == parent { try? await Task.sleep(for: .milliseconds(200)) }
                Foundation.exit(0)
            }
        }
        let path = socket ?? options.state.socketPath
        if FileManager.default.fileExists(atPath: path), (try? await MonitorClient(socketPath: path).identity()) != nil {
            throw ValidationError("a security monitor already runs on \(path)")
        }
        let monitor = try options.state.securityMonitor()
        try await monitor.launch(options.state.launchComponents())
        let identity = try await monitor.identity()
        try await MonitorServer.run(monitor, socketPath: path) {
            print("security monitor for \(identity.deviceId) (\(identity.securityProcessor.rawValue)) on \(path)")
            fflush(nil)
        }
    }
}

struct ServiceOptions: ParsableArguments {
    @Option(help: "Security Service URL.") var server: String
    @Option(help: "SHA-256 fingerprint of the service's root CA, to pin it.") var fingerprint: String
    @Option(name: .customLong("monitor-socket"), help: "Use the security monitor on this socket instead of one in this process.")
    var monitorSocket: String?
    @Option(help: "Seconds one request to the service may take, connecting included.") var timeout: Double = 30

    var requestTimeout: Duration { .milliseconds(Int64(max(timeout, 0.1) * 1000)) }
}

/// Saves a credential: the chain as certificate.pem, the key as client-key.pem (0600), the
/// attestation's result as attestation.json.
///
/// `rampartd run` attests from two loops (renewal and updates): saves are serialised and
/// each file replaced whole, so the key and the chain on disk always belong together.
func save(_ credential: DeviceSession.Credential, in state: DeviceState) throws {
    try credentialFiles.withLock { _ in
        try SecretFile.write(credential.clientKeyPEM, to: "\(state.clientKeyPath).new")
        guard rename("\(state.clientKeyPath).new", state.clientKeyPath) == 0 else {
            throw ValidationError("cannot replace \(state.clientKeyPath): \(String(cString: strerror(errno)))")
        }
        try credential.result.certificateChain.joined().write(toFile: state.certificatePath, atomically: true, encoding: .utf8)
        try JSONEncoder.rampart.encode(credential.result).write(to: URL(fileURLWithPath: state.attestationPath), options: .atomic)
    }
}

let credentialFiles = Mutex<Void>(())

/// The credential saved by the last attestation, if any (and only when its key is the one
/// its certificate certifies).
func savedCredential(in state: DeviceState) -> DeviceSession.Credential? {
    credentialFiles.withLock { _ in
        guard let result = FileManager.default.contents(atPath: state.attestationPath)
                .flatMap({ try? JSONDecoder.rampart.decode(AttestationResult.self, from: $0) }),
            let key = try? String(contentsOfFile: state.clientKeyPath, encoding: .utf8),
            let leaf = result.certificateChain.first.flatMap({ try? Certificate(pemEncoded: $0) }),
            let privateKey = try? P256.Signing.PrivateKey(pemRepresentation: key),
            leaf.publicKey == Certificate.PublicKey(privateKey.publicKey)
        else { return nil }
        return DeviceSession.Credential(result: result, clientKeyPEM: key)
    }
}

struct AppOptions: ParsableArguments {
    @Option(help: "Seconds new apps must run without failing before an update commits; a failure rolls it back.")
    var healthWindow: Double = 5
}

/// The apps `rampartd run` keeps running: one supervisor, made once the device knows its
/// tenant (from its last attestation, so apps start at boot without the service), with the
/// simulated board and HTTPS that presents the current attested certificate.
final class RunningApps: Sendable {
    let state: DeviceState
    let network: DeviceAppNetwork
    private let supervisor = Mutex<AppSupervisor?>(nil)

    let reporter: FailureReporter?

    init(state: DeviceState, reporter: FailureReporter? = nil) {
        self.state = state
        self.reporter = reporter
        network = DeviceAppNetwork(
            credential: savedCredential(in: state), extraTrustRootsPEM: try? String(contentsOfFile: state.appTrustPath, encoding: .utf8))
    }

    func supervisor(tenant: TenantID) -> AppSupervisor {
        supervisor.withLock { current in
            if let current { return current }
            let made = AppSupervisor(
                environment: AppEnvironment(
                    directory: URL(fileURLWithPath: state.appsDirectory), peripherals: peripherals(), network: network,
                    tenantID: tenant, logger: Logger(label: "rampartd.apps")),
                onExit: { [reporter] definition, exit, crashLoop in reporter?.appEnded(definition, exit, crashLoop: crashLoop) })
            current = made
            return made
        }
    }

    var current: AppSupervisor? { supervisor.withLock { $0 } }

    /// The board: Linux devices as <state-dir>/peripherals.json maps them, else simulated.
    func peripherals() -> any PeripheralProvider {
        guard let data = FileManager.default.contents(atPath: "\(state.directory)/peripherals.json") else { return SimulatedBoard() }
        guard let map = try? JSONDecoder().decode(LinuxPeripheralMap.self, from: data) else {
            print("rampartd: \(state.directory)/peripherals.json is not a peripheral map; apps get a simulated board")
            return SimulatedBoard()
        }
        return LinuxPeripherals(map: map)
    }

    /// Starts the installed apps (at boot, after leaving development mode), when an earlier
    /// attestation named the tenant and pinned the root their signatures lead to.
    func startInstalled() async {
        guard let (root, tenant) = trust(state) else { return }
        await UpdateAgent.startInstalledApps(state: state, in: supervisor(tenant: tenant), serviceRoot: root, tenant: tenant)
    }
}

/// The pinned root and the tenant from the device's last attestation, if it has attested.
func trust(_ state: DeviceState) -> (Certificate, TenantID)? {
    guard let credential = savedCredential(in: state),
        let rootPEM = try? String(contentsOfFile: state.serviceRootPath, encoding: .utf8),
        let root = try? Certificate(pemEncoded: rootPEM)
    else { return nil }
    return (root, credential.result.tenantId)
}

struct InstallCapability: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-capability",
        abstract: "Install a development capability file (from `rampart device enable-development`).",
        discussion: """
            Checks that the file is signed by this device's tenant (its image-signing key, chaining \
            to the pinned Rampart root), names this device and has not expired, then keeps it as \
            <state-dir>/capability.json. `rampartd run` then opens the debug socket \
            <state-dir>/debug.sock (0600) and accepts apps signed by the developer keys it lists. \
            The device must have attested once (it needs its tenant and the pinned root).
            """)
    @OptionGroup var options: StateOptions
    @Option(help: "The capability file.") var file: String
    @Option(name: .customLong("monitor-socket"), help: "Use the security monitor on this socket instead of one in this process.")
    var monitorSocket: String?

    func run() async throws {
        guard let bytes = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        guard let (root, tenant) = trust(options.state) else {
            throw ValidationError("this device has not attested yet: run `rampartd attest` or `rampartd run` first")
        }
        let monitor = try await options.launchedMonitor(socket: monitorSocket)
        let mode = DevelopmentMode(state: options.state, root: root, device: try await monitor.identity().deviceId, tenant: tenant)
        let capability: DeviceCapability
        do {
            capability = try await mode.install(bytes)
        } catch let error as ImagePackageError {
            throw ValidationError("refused: \(error.message) [\(error.code)]")
        }
        try options.emit(
            capability,
            "Development mode until \(capability.expiresAt.formatted(.iso8601)): \(capability.developerKeys.count) developer key(s); `rampartd run` opens \(mode.socketPath).")
    }
}

struct Attest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attest once: challenge, signed evidence, and a 24-hour client certificate.",
        discussion: "Saves <state-dir>/certificate.pem and <state-dir>/client-key.pem (0600) for mutual TLS.")
    @OptionGroup var options: StateOptions
    @OptionGroup var service: ServiceOptions

    func run() async throws {
        let monitor = try await options.launchedMonitor(socket: service.monitorSocket)
        let credential = try await DeviceSession.attest(
            server: service.server, fingerprint: service.fingerprint, monitor: monitor, timeout: service.requestTimeout)
        try save(credential, in: options.state)
        let result = credential.result
        try options.emit(
            result,
            "Attested: device \(result.deviceId) of tenant \(result.tenantId), certificate valid until \(result.expiresAt); saved to \(options.state.certificatePath)")
    }
}

struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check for updates once: attest, follow the group's TUF repository, install what is deployed.",
        discussion: """
            Downloads (resuming) and verifies each new image — TUF length and hash, the image \
            signature for this device's tenant, its security version against the security \
            monitor's counter — installs into the inactive slot under <state-dir>/slots, switches, \
            starts the apps as a health check and only then commits, raises the counters and \
            reports confirmed; a bad start switches back and reports rolled-back. An install a \
            power loss interrupted is finished or undone first. New system software is installed \
            and armed here and boots at the next `rampartd run`. `rampartd run` does this at start \
            and then every --update-interval.
            """)
    @OptionGroup var options: StateOptions
    @OptionGroup var service: ServiceOptions
    @OptionGroup var apps: AppOptions

    func run() async throws {
        let monitor = try await options.launchedMonitor(socket: service.monitorSocket, bootTrial: true)
        let outcome: UpdateOutcome
        do {
            outcome = try await checkForUpdates(
                state: options.state, service: service, monitor: monitor, healthWindow: apps.healthWindow).0
        } catch is RestartRequired {
            outcome = .restartRequired
        }
        guard outcome == .restartRequired else {
            return try options.emit(["outcome": "\(outcome)"], "Update check: \(outcome)")
        }
        let boot = try SlotStore(directory: options.state.directory).boot()
        try options.emit(
            ["outcome": "\(outcome)"],
            boot.trial != nil
                ? "Update check: new system software is installed and armed; it boots, and is health-checked, at the next `rampartd run`."
                : "Update check: the system software on trial failed (\(boot.lastRollback?.detail ?? "unhealthy")); the next start runs the previous release.")
    }
}

/// Attests, then runs one update check with the fresh credential; returns what it did and
/// the transport it used (for the contacts in between).
func checkForUpdates(
    state: DeviceState, service: ServiceOptions, monitor: any SecurityMonitorInterface, healthWindow: Double,
    apps: RunningApps? = nil
) async throws -> (UpdateOutcome, DeviceTransport) {
    let rootPEM = try await DeviceSession.pinnedRoot(server: service.server, fingerprint: service.fingerprint, timeout: service.requestTimeout)
    try rootPEM.write(toFile: state.serviceRootPath, atomically: true, encoding: .utf8)
    let credential: DeviceSession.Credential
    do {
        let attested = try await attestOrFailTrial(state: state) {
            try await DeviceSession.attest(server: service.server, rootPEM: rootPEM, monitor: monitor, timeout: service.requestTimeout)
        }
        try save(attested, in: state)
        apps?.network.update(attested)
        credential = attested
    } catch let refusal as APIFailure where UpdateRequired.codes.contains(refusal.body.error) {
        // Refused for its system software: a recovery certificate (an hour, update routes only)
        // lets the device fetch the release that fixes it. Not saved, not lent to apps.
        credential = try await DeviceSession.attest(
            server: service.server, rootPEM: rootPEM, monitor: monitor, timeout: service.requestTimeout, recovery: true)
        print("rampartd: refused (\(refusal.body.error)); checking for updates with a recovery certificate")
    }
    let transport = DeviceTransport(server: service.server, rootPEM: rootPEM, credential: credential, timeout: service.requestTimeout)
    var agent = UpdateAgent(
        state: state, transport: transport, monitor: monitor, serviceRoot: try Certificate(pemEncoded: rootPEM),
        tenant: credential.result.tenantId)
    agent.healthWindow = healthWindow
    agent.apps = apps?.supervisor(tenant: credential.result.tenantId)
    agent.installsSystemSoftware = service.monitorSocket == nil
    agent.reporter = apps?.reporter
    agent.developmentMode = await DevelopmentMode(
        state: state, root: try Certificate(pemEncoded: rootPEM), device: try await monitor.identity().deviceId,
        tenant: credential.result.tenantId
    ).current() != nil
    let outcome = try await agent.check()
    await agent.startInstalledApps()
    return (outcome, transport)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the device: start the security monitor, attest, and renew at half-life.",
        discussion: """
            Starts `rampartd monitor` as a child process (unless --monitor-socket names one that \
            runs already), then attests and saves the 24-hour credential, renewing it half-way \
            through its life. When the service cannot be reached it retries after a pause that \
            doubles up to --max-backoff, with jitter. A device refused because its system \
            software is unknown or revoked says so and tries again hourly. Stops on SIGINT/SIGTERM.

            At start it picks the runtime to be, as a boot loader would: new system software on \
            trial (one attempt), else the active slot's, else this executable — each verified \
            against the pinned root before it runs — and replaces itself with it (exec). After \
            installing new system software, or when the one on trial fails its health check \
            (apps fail, or the service refuses to attest it), it restarts and picks again. \
            Run it under a supervisor that restarts it (systemd Restart=always): a start that \
            dies on trial is rolled back at the next.
            """)
    @OptionGroup var options: StateOptions
    @OptionGroup var service: ServiceOptions
    @Option(help: "Longest pause between retries, in seconds.") var maxBackoff: Double = 600
    @Option(help: "First retry pause, in seconds.") var initialBackoff: Double = 2
    @Option(help: "Seconds between update checks (with ±10 % jitter); the first runs at start.") var updateInterval: Double = 86_400
    @Option(help: "Seconds between contacts that ask whether an operator requested an update now.") var contactInterval: Double = 300
    @Option(help: "Seconds between uploads of queued failure reports (doubling after a failure, up to 600).")
    var reportInterval: Double = 30
    @OptionGroup var appOptions: AppOptions

    func run() async throws {
        if service.monitorSocket == nil { try await options.bootSelectedRuntime(trials: true, log: log) }
        if try await runDevice() {
            log("restarting to boot the selected system software")
            try SystemBoot.restart()
        }
    }

    /// Runs until stopped (false) or until the runtime must restart into other system software (true).
    private func runDevice() async throws -> Bool {
        var child: pid_t?
        let monitor: MonitorClient
        if let socket = service.monitorSocket {
            monitor = MonitorClient(socketPath: socket)
        } else {
            try? FileManager.default.removeItem(atPath: options.state.socketPath)
            child = try spawnMonitor()
            monitor = MonitorClient(socketPath: options.state.socketPath)
        }
        defer { if let child { kill(child, SIGTERM); var status: Int32 = 0; waitpid(child, &status, 0) } }
        let identity = try await waitForMonitor(monitor)
        log("device \(identity.deviceId) (\(identity.securityProcessor.rawValue)), software \(identity.softwareVersion), \(identity.measurements.count) measurements")

        let reporter = FailureReporter(
            queue: ReportQueue(state: options.state), deviceId: identity.deviceId, systemSoftwareVersion: identity.softwareVersion)
        // A run that ended without stopping (crash, kill, power loss) left its marker behind.
        let marker = "\(options.state.directory)/running"
        if FileManager.default.fileExists(atPath: marker) {
            reporter.report(
                .runtimeCrash, eventClass: .os, details: "the previous run of rampartd ended without stopping (crash, kill or power loss)")
        }
        try DurableFile.write(Data("\(getpid())".utf8), to: marker)
        let apps = RunningApps(state: options.state, reporter: reporter)
        await apps.startInstalled()
        let policy = RenewalPolicy(initialBackoff: initialBackoff, maximumBackoff: maxBackoff)
        var restart = false
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await keepAttested(monitor, policy: policy, apps: apps) }
            group.addTask { try await keepUpdated(monitor, apps: apps) }
            group.addTask { try await keepDebugSocket(monitor, apps: apps) }
            group.addTask { try await keepReporting(reporter, apps: apps) }
            if let pid = child { group.addTask { try await watchMonitor(pid, reporter: reporter) } }
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    log("\(signal): stopping")
                    return
                }
            }
            do {
                try await group.next()
            } catch is RestartRequired {
                restart = true
            }
            group.cancelAll()
        }
        await apps.current?.stopAll()
        try? FileManager.default.removeItem(atPath: marker)
        return restart
    }

    /// Uploads queued failure reports every --report-interval (with the saved credential),
    /// doubling the pause after a failure up to 10 minutes; and reports a storm of denied
    /// host calls (100 or more by one app between two looks).
    private func keepReporting(_ reporter: FailureReporter, apps: RunningApps) async throws {
        var pause = reportInterval
        var denials: [ComponentID: Int] = [:]
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(Int(pause * 1000)))
            for status in apps.current?.status() ?? [] {
                let total = status.deniedCalls.values.reduce(0, +)
                if total - denials[status.componentId, default: 0] >= 100 {
                    reporter.report(
                        .denialStorm, eventClass: .application, component: status.componentId,
                        details: "\(total - denials[status.componentId, default: 0]) denied host calls: \(status.deniedCalls.keys.sorted().joined(separator: ", "))")
                }
                denials[status.componentId] = total
            }
            guard reporter.queue.count > 0 || !reporter.queue.pending(limit: 1).isEmpty else {
                pause = reportInterval
                continue
            }
            do {
                guard let credential = savedCredential(in: options.state),
                    let rootPEM = try? String(contentsOfFile: options.state.serviceRootPath, encoding: .utf8)
                else { continue }
                let transport = DeviceTransport(server: service.server, rootPEM: rootPEM, credential: credential, timeout: service.requestTimeout)
                let sent = try await reporter.queue.upload(via: transport)
                log("uploaded \(sent) failure report(s)")
                pause = reportInterval
            } catch {
                pause = min(max(pause * 2, reportInterval), 600)
                log("uploading failure reports failed: \(error); retrying in \(Int(pause)) s")
            }
        }
    }

    /// Ends the run (so the init system restarts it) when the security monitor it started
    /// dies, after reporting it.
    private func watchMonitor(_ child: pid_t, reporter: FailureReporter) async throws {
        var status: Int32 = 0
        while !Task.isCancelled {
            if waitpid(child, &status, WNOHANG) == child {
                reporter.report(.runtimeCrash, eventClass: .os, details: "the security monitor ended (wait status \(status))")
                throw ValidationError("the security monitor ended unexpectedly")
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Attests, then sleeps until the certificate's half-life or the next retry; until cancelled.
    private func keepAttested(_ monitor: MonitorClient, policy: RenewalPolicy, apps: RunningApps) async throws {
        var generator = SystemRandomNumberGenerator()
        var failures = 0
        while !Task.isCancelled {
            let pause: TimeInterval
            do {
                let credential = try await attestOrFailTrial(state: options.state) {
                    try await DeviceSession.attest(
                        server: service.server, fingerprint: service.fingerprint, monitor: monitor, timeout: service.requestTimeout)
                }
                try save(credential, in: options.state)
                apps.network.update(credential)
                apps.current?.notify("certificate_renewed")
                failures = 0
                let leaf = try Certificate(pemEncoded: credential.result.certificateChain[0])
                let renewal = policy.renewal(notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter)
                log("attested: certificate valid until \(leaf.notValidAfter), renewing at \(renewal)")
                pause = max(1, renewal.timeIntervalSinceNow)
            } catch let restart as RestartRequired {
                throw restart
            } catch let error as APIFailure where UpdateRequired.codes.contains(error.body.error) {
                apps.reporter?.report(.attestationFailed, eventClass: .os, details: "\(error.body.error): \(error.body.message)")
                log("refused: \(error.body.message) [\(error.body.error)]; trying again in \(Int(policy.updateRequiredRetry)) s")
                pause = policy.updateRequiredRetry
            } catch {
                failures += 1
                pause = policy.backoff(attempt: failures, using: &generator)
                log("attestation failed (attempt \(failures)): \(error); retrying in \(String(format: "%.1f", pause)) s")
            }
            try await Task.sleep(for: .seconds(pause))
        }
    }

    /// An update check at start and then every --update-interval, jittered so a fleet does
    /// not arrive at once; in between, a contact every --contact-interval that starts a check
    /// at once when an operator asked the group to update now. A failed check is logged and
    /// tried at the next interval.
    private func keepUpdated(_ monitor: MonitorClient, apps: RunningApps) async throws {
        var transport: DeviceTransport?
        var nextCheck = Date()
        var checkNow = true
        while !Task.isCancelled {
            if checkNow || Date() >= nextCheck {
                do {
                    let (outcome, used) = try await checkForUpdates(
                        state: options.state, service: service, monitor: monitor, healthWindow: appOptions.healthWindow, apps: apps)
                    transport = used
                    log("update check: \(outcome)")
                    nextCheck = Date().addingTimeInterval(updateInterval * Double.random(in: 0.9...1.1))
                    // A deferral or a closed window names when to look again.
                    if case .deferred(let until) = outcome { nextCheck = min(nextCheck, until) }
                    if case .waitingForWindow(let opens) = outcome { nextCheck = min(nextCheck, opens) }
                    if case .installed = outcome { apps.current?.notify("update_installed") }
                    if outcome == .restartRequired {
                        guard service.monitorSocket == nil else {
                            log("new system software waits: a runtime using --monitor-socket does not restart into it")
                            continue
                        }
                        restartPending.store(true, ordering: .releasing)
                        throw RestartRequired()
                    }
                } catch let restart as RestartRequired {
                    throw restart
                } catch {
                    log("update check failed: \(error)")
                    nextCheck = Date().addingTimeInterval(updateInterval * Double.random(in: 0.9...1.1))
                }
            }
            try await Task.sleep(for: .seconds(contactInterval * Double.random(in: 0.9...1.1)))
            checkNow = (try? await transport?.updateCheck())?.checkNow ?? false
        }
    }

    /// While a valid development capability is installed, serves the debug socket; checks
    /// again every 10 s, so a capability installed while running is picked up.
    private func keepDebugSocket(_ monitor: MonitorClient, apps: RunningApps) async throws {
        while !Task.isCancelled {
            if let (root, tenant) = trust(options.state), let device = try? await monitor.identity().deviceId {
                let mode = DevelopmentMode(state: options.state, root: root, device: device, tenant: tenant)
                if await mode.current() != nil {
                    try await DebugServer(mode: mode, apps: apps.supervisor(tenant: tenant)).run {
                        log("development mode: debug socket at \(mode.socketPath)")
                    }
                    log("left development mode: cloud updates only")
                    await apps.startInstalled()
                    continue
                }
            }
            try await Task.sleep(for: .seconds(10))
        }
    }

    private func log(_ line: String) {
        print("rampartd: \(line)")
        fflush(nil)
    }

    /// Starts `rampartd monitor` (this very executable) for the same state directory.
    private func spawnMonitor() throws -> pid_t {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let arguments = [executable, "monitor", "--state-dir", options.stateDirectory, "--parent", String(getpid())]
        return try ChildProcess.spawn(executable, Array(arguments.dropFirst()))
    }

    private func waitForMonitor(_ monitor: MonitorClient) async throws -> MonitorIdentity {
        var lastError: (any Error)?
        for _ in 0..<100 {
            do { return try await monitor.identity() } catch { lastError = error }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the security monitor did not answer within 10 s: \(lastError.map { "\($0)" } ?? "")")
    }
}

