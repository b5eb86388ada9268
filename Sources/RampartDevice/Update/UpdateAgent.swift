public import Foundation
public import RampartModel
import RampartImage
import RampartTUF
import Logging
public import X509

/// How the update agent reaches the service: the device's own routes over mutual TLS.
public protocol UpdateTransport: Sendable {
    func updateCheck() async throws -> UpdateCheckResponse
    /// GETs `path`; nil when the service answers 404. From byte `offset` when it is not 0;
    /// at most `limit` bytes — the rest of a longer answer is not read.
    func fetch(_ path: String, offset: Int, limit: Int) async throws -> Data?
    func report(_ report: DeviceUpdateReport) async throws
}

/// What one update check did.
public enum UpdateOutcome: Sendable, Equatable {
    case upToDate
    case installed(DeploymentID?)
    case rolledBack(String)
    case waitingForWindow(Date)
    /// An app with `SoftwareUpdateDeferral` put the install off until then.
    case deferred(Date)
    /// The device is in development mode: apps from the cloud wait until it leaves.
    case heldForDevelopment
    /// The runtime must start over to boot other system software: a new release on trial,
    /// or the previous one after the trial failed (``SystemBoot`` picks which).
    case restartRequired
    case failed(String)
    case notInAGroup
}

/// The device's update agent: at each check it follows TUF from its trusted root to the
/// group's targets, downloads what the deployment needs (resuming), verifies each package
/// twice — TUF's length and hash, then the image signature for the device's tenant — refuses
/// lower security versions than its counters hold, validates the modules, installs into the
/// inactive slot, switches, runs the health check, and only then commits, advances the
/// counters and reports `confirmed`. A bad start rolls back to the slot that ran before.
///
/// New system software installs the same way, into the same slot as the apps it runs with;
/// the runtime then restarts into it (``UpdateOutcome/restartRequired``, ``SystemBoot``), and
/// the new runtime's health check adds to the apps' that it was attested.
///
/// Every step is idempotent and derived from disk at start, so a power loss anywhere leaves
/// a complete, verified slot and the next start finishes or undoes the install truthfully.
public struct UpdateAgent: Sendable {
    public let state: DeviceState
    public let transport: any UpdateTransport
    public let monitor: any SecurityMonitorInterface
    /// The Rampart root CA (pinned at provisioning/login): image signatures lead to it.
    public let serviceRoot: Certificate
    public let tenant: TenantID
    public var now: @Sendable () -> Date = { Date() }
    /// The device's running apps (`rampartd run`): the health check starts the new set in
    /// it and leaves it running. Without one (`rampartd update`) the check runs the new set
    /// in a supervisor of its own and stops it afterwards.
    public var apps: AppSupervisor?
    /// How long new apps must run without failing to be healthy.
    public var healthWindow: TimeInterval = 5
    /// How long apps holding `SoftwareUpdateDeferral` have to answer an update's announcement.
    public var deferralAnswerWindow: TimeInterval = 2
    /// In development mode the apps are the developer's: cloud app updates wait (and the
    /// service hears `development_mode`) until `rampart device enable-cloud-test`.
    public var developmentMode = false
    /// Whether this runtime may install system software: only when its security monitor is
    /// the one `rampartd run` starts, which measures whatever executable runs.
    public var installsSystemSoftware = false
    /// Turns failed and rolled-back updates (and confirmed ones, as planned events) into reports.
    public var reporter: FailureReporter?
    /// The longest an update may be deferred from its first announcement.
    public static let maximumDeferral: TimeInterval = 24 * 3600

    public init(
        state: DeviceState, transport: any UpdateTransport, monitor: any SecurityMonitorInterface, serviceRoot: Certificate,
        tenant: TenantID
    ) {
        self.state = state
        self.transport = transport
        self.monitor = monitor
        self.serviceRoot = serviceRoot
        self.tenant = tenant
    }

    var slots: SlotStore { SlotStore(directory: state.directory) }

    /// One check: finish or undo an install a restart interrupted, then look for updates.
    public func check() async throws -> UpdateOutcome {
        let slots = self.slots
        slots.removeLeftovers()
        UpdateCheckpoint.checkStarted.reach()
        if let outcome = try await resumeTrial() { return outcome }
        // Before anything is verified: a power loss between a commit and its counters must not
        // let a lower security version in.
        let runningVersion = try await monitor.identity().softwareVersion
        try await advanceCounters(for: running(try slots.boot(), systemVersion: runningVersion))

        let answer = try await transport.updateCheck()
        guard let repository = answer.repositoryPath, let group = answer.deviceGroupId else { return .notInAGroup }
        var boot = try slots.boot()
        let running = running(boot, systemVersion: runningVersion)
        let trusted: TrustedMetadata
        do {
            trusted = try await refreshMetadata(repository: repository, group: group)
        } catch let error as TUFError {
            // Forged, replayed, mixed or frozen metadata: nothing is installed, and the service hears why.
            try await report(.failed, deployment: answer.deploymentId, running: running, reason: "verification_failed",
                             detail: "\(error.code): \(error.message)")
            reporter?.report(.updateFailed, eventClass: .os, details: "update metadata refused: \(error.code): \(error.message)")
            return .failed(error.code)
        }

        let deployment = try await deploymentFile(trusted, repository: repository)
        guard deployment["deviceGroupId"] == .string(group.description) else {
            try await report(.failed, deployment: answer.deploymentId, running: running, reason: "verification_failed",
                             detail: "deployment_foreign_group: the signed deployment is another device group's")
            return .failed("deployment_foreign_group")
        }
        // A staged rollout that does not reach this device: it keeps the previous deployment's apps.
        var apps = deployment
        if case .object(let rollout)? = deployment["rollout"], case .array(let canary)? = rollout["canaryDevices"],
            case .object(let previous)? = rollout["previous"],
            !canary.contains(.string(try await monitor.identity().deviceId.hex))
        {
            apps = .object(previous)
        }
        let deploymentID: DeploymentID? = if case .string(let id)? = apps["deploymentId"] { DeploymentID(id) } else { nil }
        // What should run: the deployment's apps (or, unmanaged or in development mode, the
        // ones that run), and the group's system software release. A nil target is kept.
        var wanted: [(path: String, target: TargetFile?)] = []
        let appsManaged = deployment["appsManaged"] == .bool(true) && apps["appsManaged"] == .bool(true)
        var deployedApps: [String] = []
        if appsManaged, case .array(let apps)? = apps["apps"] {
            for app in apps { if case .string(let id)? = app["imageId"] { deployedApps.append("\(id).imagepackage") } }
        }
        let runningApps = running.filter { $0.kind == .app }.map { "\($0.imageId).imagepackage" }
        let heldForDevelopment = developmentMode && appsManaged && Set(deployedApps) != Set(runningApps)
        if appsManaged && !developmentMode {
            for path in deployedApps { wanted.append((path, try trusted.target(path))) }
        } else {
            wanted += runningApps.map { ($0, nil) }
        }
        var systemHeld: String?
        if case .object(let system)? = deployment["systemSoftware"], case .string(let id)? = system["imageId"],
            case .string(let version)? = system["version"], version != runningVersion, installsSystemSoftware
        {
            wanted.append(("\(id).imagepackage", try trusted.target("\(id).imagepackage")))
        } else {
            if case .object(let system)? = deployment["systemSoftware"], case .string(let version)? = system["version"],
                version != runningVersion
            {
                systemHeld = "system software \(version) waits: a runtime started with --monitor-socket cannot measure a new executable"
            }
            if let system = running.first(where: { $0.kind == .systemSoftware }) { wanted.append(("\(system.imageId).imagepackage", nil)) }
        }
        let wantedIDs = Set(wanted.compactMap { ImageID(String($0.path.dropLast(".imagepackage".count))) })
        let runningIDs = Set(running.map(\.imageId))
        guard wantedIDs != runningIDs else {
            // Repeated at every check: a power loss between commit and counters only delays them.
            try await advanceCounters(for: running)
            if heldForDevelopment {
                try await report(.pending, deployment: deploymentID, running: running, reason: "development_mode",
                                 detail: "the device is in development mode; cloud app updates wait until it leaves")
                return .heldForDevelopment
            }
            try await report(.confirmed, deployment: deploymentID, running: running,
                             reason: systemHeld.map { _ in "system_software_held" }, detail: systemHeld)
            return .upToDate
        }
        if let rollback = boot.lastRollback, rollback.deploymentId == deploymentID, Set(rollback.imageIds) == wantedIDs,
            !answer.checkNow
        {
            // This set failed its start here before; wait for a new deployment, release or update-now.
            try await report(.rolledBack, deployment: deploymentID, running: running, reason: rollback.reason, detail: rollback.detail)
            return .rolledBack(rollback.reason)
        }

        // Download and verify what is new; keep what runs.
        try await report(.downloading, deployment: deploymentID, running: running)
        var staged: [SlotStore.Staged] = []
        for (path, target) in wanted {
            if let kept = running.first(where: { "\($0.imageId).imagepackage" == path }), let active = boot.active {
                staged.append(.kept(kept, from: active))
                continue
            }
            do {
                guard let target else { throw DeviceError(code: "image_missing", message: "\(path) is neither installed nor listed") }
                let bytes = try await download(target, path: path, repository: repository)
                staged.append(.downloaded(try await verified(bytes, target: target), bytes))
            } catch let error as any RampartError {
                let reason = ["target_too_large", "download_failed"].contains(error.code) ? "download_failed"
                    : error.code == "security_version_too_low" ? "security_version_too_low" : "verification_failed"
                try await report(.failed, deployment: deploymentID, running: running, reason: reason, detail: "\(error.code): \(error.message)")
                let image = ImageID(String(path.dropLast(".imagepackage".count)))
                let system = (deployment["systemSoftware"]?["imageId"]).map { $0 == .string(image?.description ?? "") } ?? false
                reporter?.report(
                    .updateFailed, eventClass: system ? .os : .application, image: image, details: "\(reason): \(error.code): \(error.message)")
                return .failed(error.code)
            }
        }
        UpdateCheckpoint.packageVerified.reach()

        if case .object(let window)? = deployment["maintenanceWindow"], case .string(let start)? = window["startUTC"],
            case .integer(let minutes)? = window["durationMinutes"]
        {
            let window = MaintenanceWindow(startUTC: start, durationMinutes: Int(minutes))
            if !window.contains(now()) {
                try await report(.pending, deployment: deploymentID, running: running)
                return .waitingForWindow(window.nextOpening(after: now()))
            }
        }

        if let until = try await deferral(of: deploymentID) {
            try await report(.pending, deployment: deploymentID, running: running, deferredUntil: until)
            return .deferred(until)
        }

        // Install beside the running slot and arm it: the one atomic switch.
        let slot = try slots.stage(staged, besides: boot.active)
        boot.trial = BootRecord.Trial(slot: slot, attemptsLeft: 1, deploymentId: deploymentID)
        try slots.write(boot)
        UpdateCheckpoint.trialArmed.reach()
        try await report(.installed, deployment: deploymentID, running: running)
        UpdateCheckpoint.reexecBeforeBoot.reach()
        // New system software boots in a new start of the runtime; apps alone start here.
        if staged.contains(where: { $0.image.kind == .systemSoftware && $0.isDownloaded }) { return .restartRequired }
        return try await resumeTrial() ?? .installed(deploymentID)
    }

    /// What runs: the active slot's apps, and its system software when this runtime is it
    /// (the factory runtime runs when the slot's does not verify).
    func running(_ boot: BootRecord, systemVersion: String) -> [InstalledImage] {
        (boot.active.flatMap(slots.images(in:)) ?? []).filter { $0.kind == .app || $0.version == systemVersion }
    }

    /// Boots an armed trial: one attempt, then health check; healthy → commit, counters,
    /// `confirmed`; unhealthy, or an attempt already spent by a start that never reached its
    /// verdict → back to the previous slot, `rolled-back`. A trial with new system software
    /// is judged only by the start ``SystemBoot`` booted it in; any other start restarts
    /// into it, or finds its attempt spent.
    func resumeTrial() async throws -> UpdateOutcome? {
        let slots = self.slots
        var boot = try slots.boot()
        guard var trial = boot.trial else { return nil }
        let systemVersion = try await monitor.identity().softwareVersion
        let previous = running(boot, systemVersion: systemVersion)
        guard let images = slots.images(in: trial.slot) else {
            return try await rollBack(&boot, trial: trial, reason: "interrupted", detail: "the new images did not reach their health verdict", previous: previous)
        }
        let system = images.first { $0.kind == .systemSoftware }
        if let system, system.version != systemVersion || !SystemBoot(state: state).isAttempt(trial) {
            if trial.attempt == nil, trial.attemptsLeft > 0 { return .restartRequired }
            return try await rollBack(
                &boot, trial: trial, reason: "interrupted", detail: "system software \(system.version) did not reach its health verdict",
                previous: previous)
        }
        if system == nil {
            guard trial.attemptsLeft > 0 else {
                return try await rollBack(&boot, trial: trial, reason: "interrupted", detail: "the new images did not reach their health verdict", previous: previous)
            }
            trial.attemptsLeft -= 1
            boot.trial = trial
            try slots.write(boot)
        }
        UpdateCheckpoint.trialBooted.reach()

        UpdateCheckpoint.healthCheckRunning.reach()
        var definitions: [AppDefinition] = []
        for image in images where image.kind == .app {
            guard let definition = await slots.verifiedApp(image, in: trial.slot, root: serviceRoot, tenant: tenant, now: now()) else {
                return try await rollBack(&boot, trial: trial, reason: "start_failed", detail: "\(image.imageId) no longer verifies", previous: previous)
            }
            definitions.append(definition)
        }
        if let failure = await healthCheck(definitions, replacing: previous) {
            let outcome = try await rollBack(&boot, trial: trial, reason: "start_failed", detail: failure, previous: previous)
            // Back to the runtime that ran before, or to the apps that did.
            if system != nil { return .restartRequired }
            await startInstalledApps()
            return outcome
        }
        UpdateCheckpoint.healthPassedBeforeCommit.reach()
        let old = boot.active
        boot.active = trial.slot
        boot.trial = nil
        boot.lastRollback = nil
        try slots.write(boot)
        UpdateCheckpoint.committed.reach()
        // Counters only after the commit: raised first, they could leave the only good slot below them.
        try await advanceCounters(for: images)
        UpdateCheckpoint.countersAdvanced.reach()
        UpdateCheckpoint.confirmedBeforeReport.reach()
        try await report(.confirmed, deployment: trial.deploymentId, running: images)
        for image in images where !previous.contains(image) {
            reporter?.report(
                .update, eventClass: image.kind == .systemSoftware ? .os : .application, type: .planned,
                component: image.kind == .app ? image.componentId : nil, image: image.imageId,
                details: "installed \(image.kind == .app ? "app" : "system software") \(image.version)")
        }
        if let old, old != trial.slot { try? FileManager.default.removeItem(atPath: "\(slots.slotPath(old))/slot.json") }
        UpdateCheckpoint.oldSlotCleanup.reach()
        return .installed(trial.deploymentId)
    }

    /// Starts the new apps (stopping the ones they replace) and watches them for the health
    /// window: healthy when none failed — trapped, exceeded its memory or CPU, exited with a
    /// non-zero status or did not start. Returns why not, or nil. Unhealthy apps are stopped.
    func healthCheck(_ definitions: [AppDefinition], replacing previous: [InstalledImage]) async -> String? {
        let reporter = self.reporter
        let supervisor = apps ?? AppSupervisor(
            environment: AppEnvironment(directory: appsDirectory, tenantID: tenant),
            onExit: { definition, exit, crashLoop in reporter?.appEnded(definition, exit, crashLoop: crashLoop) })
        for image in previous where image.kind == .app { await supervisor.remove(image.componentId) }
        for definition in definitions {
            await supervisor.remove(definition.manifest.componentId)
            do {
                try supervisor.start(definition)
            } catch {
                return "\(definition.manifest.name) did not start: \(error)"
            }
        }
        let deadline = Date().addingTimeInterval(healthWindow)
        var failure: String?
        watch: repeat {
            try? await Task.sleep(for: .milliseconds(50))
            for status in supervisor.status() where definitions.contains(where: { $0.manifest.componentId == status.componentId }) {
                if [.backingOff, .crashLoop].contains(status.state) {
                    failure = "\(status.name) \(status.lastExit ?? "failed") within the health window"
                    break watch
                }
            }
        } while Date() < deadline
        if failure != nil || apps == nil {
            for definition in definitions { await supervisor.remove(definition.manifest.componentId) }
        }
        return failure
    }

    var appsDirectory: URL { URL(fileURLWithPath: state.appsDirectory) }

    /// Starts the active slot's apps that are not running (after a rollback).
    public func startInstalledApps() async {
        guard let apps else { return }
        await Self.startInstalledApps(state: state, in: apps, serviceRoot: serviceRoot, tenant: tenant, now: now())
    }

    /// Starts the active slot's apps that are not running — at boot, before the service is
    /// reached — each verified again against the pinned root first.
    public static func startInstalledApps(
        state: DeviceState, in apps: AppSupervisor, serviceRoot: Certificate, tenant: TenantID, now: Date = Date()
    ) async {
        let slots = SlotStore(directory: state.directory)
        guard let active = try? slots.boot().active, let images = slots.images(in: active) else { return }
        let running = Set(apps.status().filter { $0.state == .running || $0.state == .backingOff }.map(\.componentId))
        for image in images where image.kind == .app && !running.contains(image.componentId) {
            guard let definition = await slots.verifiedApp(image, in: active, root: serviceRoot, tenant: tenant, now: now) else {
                apps.environment.logger.error("not starting \(image.imageId): it no longer verifies")
                continue
            }
            try? apps.start(definition)
        }
    }

    /// Whether the running apps defer this install: asked once per announcement, bounded at
    /// 24 hours from the first (kept in `deferral.json`, so restarts do not reset it).
    func deferral(of deployment: DeploymentID?) async throws -> Date? {
        guard let apps else { return nil }
        struct Record: Codable { var deploymentId: DeploymentID?; var firstAnnouncedAt: Date; var deferredUntil: Date }
        let path = "\(state.directory)/deferral.json"
        let decoder = JSONDecoder(), encoder = JSONEncoder()
        decoder.dateDecodingStrategy = .iso8601
        encoder.dateEncodingStrategy = .iso8601
        let record = FileManager.default.contents(atPath: path).flatMap { try? decoder.decode(Record.self, from: $0) }
        let current = record?.deploymentId == deployment ? record : nil
        let first = current?.firstAnnouncedAt ?? now()
        let limit = first.addingTimeInterval(Self.maximumDeferral)
        if let current, current.deferredUntil > now() { return min(current.deferredUntil, limit) }
        guard now() < limit, let asked = await apps.announceUpdate(installsAt: now(), answerWithin: deferralAnswerWindow) else {
            try? FileManager.default.removeItem(atPath: path)
            return nil
        }
        let until = min(asked, limit)
        try DurableFile.write(try encoder.encode(Record(deploymentId: deployment, firstAnnouncedAt: first, deferredUntil: until)), to: path)
        return until
    }

    private func rollBack(
        _ boot: inout BootRecord, trial: BootRecord.Trial, reason: String, detail: String, previous: [InstalledImage]
    ) async throws -> UpdateOutcome {
        let attempted = slots.images(in: trial.slot) ?? []
        boot.rollBack(reason: reason, detail: detail, attempted: attempted)
        try slots.write(boot)
        reporter?.rolledBack(attempted.filter { !previous.contains($0) }, reason: reason, detail: detail)
        try await report(.rolledBack, deployment: trial.deploymentId, running: previous, reason: reason, detail: detail)
        return .rolledBack(reason)
    }

    /// Raises each installed component's counter to its security version; repeated at every
    /// commit, so a power loss between commit and counters only delays it.
    func advanceCounters(for images: [InstalledImage]) async throws {
        for image in images {
            _ = try await monitor.advanceCounter(image.counter, to: UInt64(image.securityVersion))
        }
    }

    // MARK: TUF

    var tufDirectory: String { "\(state.directory)/tuf" }

    /// Root (bootstrapped from 1.root.json over the pinned, mutually authenticated TLS when
    /// none is trusted yet, then rotated version by version), timestamp, snapshot, targets.
    func refreshMetadata(repository: String, group: DeviceGroupID) async throws -> TrustedMetadata {
        let directory = "\(tufDirectory)/\(group)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let rootPath = "\(directory)/root.json"
        var rootBytes = FileManager.default.contents(atPath: rootPath)
        if rootBytes == nil {
            guard let first = try await transport.fetch("\(repository)/metadata/1.root.json", offset: 0, limit: TrustedMetadata.Limits().root + 1) else {
                throw TUFError("tuf_metadata_invalid", "the repository has no 1.root.json")
            }
            rootBytes = first
        }
        var trusted = try TrustedMetadata(root: rootBytes!, now: now())
        try DurableFile.write(rootBytes!, to: rootPath)
        for _ in 0..<trusted.limits.maxRootRotations {
            guard let next = try await transport.fetch(
                "\(repository)/metadata/\(trusted.root.common.version + 1).root.json", offset: 0, limit: trusted.limits.root + 1)
            else { break }
            try trusted.updateRoot(next)
            try DurableFile.write(next, to: rootPath)
            UpdateCheckpoint.rootUpdated.reach()
        }
        try trusted.finishRootUpdates()
        guard let timestamp = try await transport.fetch("\(repository)/metadata/timestamp.json", offset: 0, limit: trusted.limits.timestamp + 1) else {
            throw TUFError("tuf_metadata_invalid", "the repository has no timestamp.json")
        }
        try trusted.updateTimestamp(timestamp)
        try DurableFile.write(timestamp, to: "\(directory)/timestamp.json")
        UpdateCheckpoint.timestampPersisted.reach()
        guard let snapshot = try await transport.fetch(
            "\(repository)/metadata/\(trusted.timestamp!.snapshot.version).snapshot.json", offset: 0, limit: trusted.limits.snapshot + 1)
        else { throw TUFError("tuf_metadata_invalid", "the snapshot the timestamp names is missing") }
        try trusted.updateSnapshot(snapshot)
        try DurableFile.write(snapshot, to: "\(directory)/snapshot.json")
        UpdateCheckpoint.snapshotPersisted.reach()
        guard let targets = try await transport.fetch(
            "\(repository)/metadata/\(trusted.snapshot!.targets.version).targets.json", offset: 0, limit: trusted.limits.targets + 1)
        else { throw TUFError("tuf_metadata_invalid", "the targets the snapshot names are missing") }
        try trusted.updateTargets(targets)
        // Versions never go back across checks either: a replayed, older but unexpired set
        // (a restored backup, a man in the middle) is refused.
        let floorsPath = "\(directory)/versions.json"
        let versions = [trusted.timestamp!.common.version, trusted.snapshot!.common.version, trusted.targets!.common.version]
        if let data = FileManager.default.contents(atPath: floorsPath), let floors = try? JSONDecoder().decode([Int].self, from: data),
            floors.count == 3, zip(versions, floors).contains(where: { $0 < $1 })
        {
            throw TUFError("tuf_version_rollback", "the repository offers versions \(versions), older than the \(floors) this device trusted")
        }
        try DurableFile.write(targets, to: "\(directory)/targets.json")
        try DurableFile.write(try JSONEncoder().encode(versions), to: floorsPath)
        UpdateCheckpoint.targetsPersisted.reach()
        return trusted
    }

    func deploymentFile(_ trusted: TrustedMetadata, repository: String) async throws -> JSONValue {
        let target = try trusted.target("deployment.json")
        let bytes = try await download(target, path: "deployment.json", repository: repository)
        return try JSONValue(parsing: bytes)
    }

    /// Downloads a target into `<state>/downloads/<sha256>.part`, resuming what an earlier
    /// attempt got, never taking more than the target's length, and checks it.
    func download(_ target: TargetFile, path: String, repository: String) async throws -> Data {
        let downloads = "\(state.directory)/downloads"
        try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        let partial = "\(downloads)/\(target.sha256).part"
        var have = FileManager.default.contents(atPath: partial) ?? Data()
        if have.count > target.length { have = Data() }
        UpdateCheckpoint.downloadStarted.reach()
        if have.count < target.length {
            guard let rest = try await transport.fetch(
                "\(repository)/targets/\(target.sha256).\(path)", offset: have.count, limit: target.length - have.count + 1) else {
                throw DeviceError(code: "download_failed", message: "the service no longer offers \(path)")
            }
            have.append(rest.prefix(target.length - have.count + 1))
            // Keep what came, so a power loss here resumes instead of starting over.
            try DurableFile.write(have.prefix(target.length), to: partial, syncDirectory: false)
            UpdateCheckpoint.downloadPartial.reach()
        }
        do {
            try target.verify(have)
        } catch {
            // Damaged or overlong: start from nothing next time.
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        UpdateCheckpoint.downloadComplete.reach()
        return have
    }

    /// The image signature, the metadata TUF listed, and anti-rollback.
    func verified(_ bytes: Data, target: TargetFile) async throws -> InstalledImage {
        let package = try ImagePackage(zipped: bytes)
        try await ImagePackageVerifier(root: serviceRoot).verify(package, tenant: tenant, now: now())
        let metadata = package.metadata
        guard let imageID = metadata.imageId, case .string(metadata.imageId?.description)? = target.custom?["rampart"]?["imageId"],
            case .integer(Int64(metadata.securityVersion))? = target.custom?["rampart"]?["securityVersion"]
        else {
            throw DeviceError(code: "image_metadata_mismatch", message: "the package is not the image the update metadata describes")
        }
        let floor = try await monitor.counter(metadata.kind == .systemSoftware ? .systemSoftware : .component(metadata.componentId))
        guard UInt64(metadata.securityVersion) >= floor else {
            throw DeviceError(
                code: "security_version_too_low",
                message: "\(metadata.name) \(metadata.version) has security version \(metadata.securityVersion); this device committed \(floor)")
        }
        if metadata.kind == .app { try AppHost.validate(package.payload) }
        return InstalledImage(
            imageId: imageID, componentId: metadata.componentId, kind: metadata.kind, version: metadata.version,
            securityVersion: metadata.securityVersion, sha256: target.sha256)
    }

    // MARK: Reports

    /// Reports with the next sequence, kept on disk so it only grows.
    func report(
        _ updateState: DeviceUpdateState, deployment: DeploymentID?, running: [InstalledImage], reason: String? = nil,
        detail: String? = nil, deferredUntil: Date? = nil
    ) async throws {
        let path = "\(state.directory)/update-sequence"
        let sequence = (FileManager.default.contents(atPath: path).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0) + 1
        try DurableFile.write(Data(String(sequence).utf8), to: path)
        let version = (try? await monitor.identity().softwareVersion) ?? "unknown"
        let apps = running.filter { $0.kind == .app }.map { RunningSoftware.App(componentId: $0.componentId, imageId: $0.imageId, version: $0.version) }
        try await transport.report(
            DeviceUpdateReport(
                sequence: sequence, deploymentId: deployment, state: updateState, reason: reason, detail: detail.map { String($0.prefix(1000)) },
                running: RunningSoftware(systemSoftware: .init(version: version, imageId: running.first { $0.kind == .systemSoftware && $0.version == version }?.imageId), apps: apps),
                deferredUntil: deferredUntil))
    }
}

extension InstalledImage {
    /// The monotonic counter that holds this component's highest committed security version.
    var counter: MonotonicCounter { kind == .systemSoftware ? .systemSoftware : .component(componentId) }
}

extension SlotStore.Staged {
    var isDownloaded: Bool { if case .downloaded = self { true } else { false } }
}
