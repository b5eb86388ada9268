import ArgumentParser
import Crypto
import Foundation
import Logging
import NIOCore
import RampartDevice
import RampartImage
import RampartModel
import RampartPKI
import RampartService
import ServiceLifecycle
import SwiftASN1
import WAT
import X509

/// `rampart demo`: the whole loop on this machine, narrated, on embedded defaults.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the Security Service on this machine and walk a first tenant and device through it.",
        discussion: """
            Starts the service in-process (SQLite in a new temporary directory, TLS 1.3 on a free \
            loopback port), then does what an operator would do with this CLI: log in with the \
            bootstrap token while pinning the root CA, create a tenant and a product, publish the \
            device runtime as a trusted release, provision a device — on a TPM 2.0 served by swtpm when \
            swtpm is installed, with software DICE otherwise — and claim it by its provisioning record, attest it through its security monitor for a 24-hour client \
            certificate, install a telemetry app through TUF and the A/B slots that reaches a local \
            nginx (the device maker's cloud) with the device's certificate, roll back a crashing update \
            and show its failure reports bucketed by the service, show that another tenant, a \
            Reader, a counterfeit device and a revoked release are refused, download and verify the CA chain, release and re-claim the \
            device, and read the audit log. Every step checks its \
            result; the command exits non-zero if any did not really happen.
            """
    )

    @Flag(help: "Print a JSON summary at the end instead of the narration.") var json = false
    @Option(name: .customLong("dir"), help: "Where to keep the demo's files (default: a new temporary directory).")
    var directory: String?

    func run() async throws {
        let directory = try directory ?? makeTemporaryDirectory(prefix: "rampart-demo")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create the demo directory \(directory): \(error.localizedDescription)")
        }
        var narrator = Narrator(quiet: json)
        let summary = try await runDemo(in: directory, narrator: &narrator)
        if json {
            let encoder = JSONEncoder.rampart
            encoder.outputFormatting.insert(.prettyPrinted)
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        }
    }
}

/// What the demo did, for `--json` and for tests.
struct DemoSummary: Codable, Sendable {
    /// `tpm2` (on swtpm) or `software-dice`.
    var securityProcessor: SecurityProcessorKind
    var directory: String
    var server: String
    var rootCAFingerprint: String
    var tenantId: TenantID
    var productId: ProductID
    var deviceId: DeviceID
    var chainFile: String
    var chainVerifiedByOpenSSL: Bool
    var deviceCertificateFile: String
    var deviceCertificateVerifiedByOpenSSL: Bool
    var refusals: [String]
    var auditEntries: Int
    /// The app image the device installed and confirmed, and why the bad update came back.
    var installedImageId: ImageID
    var rollbackReason: String
    /// The error buckets the bad update's reports made (category/class), as the service shows them.
    var errorBuckets: [String]
    /// The cloud endpoint's log line for the app's device-authenticated telemetry.
    var telemetryLogLine: String
}

/// The demo's apps, made without a C compiler: one whose `_start` traps at once
/// (`unreachable`), as a crashing update would, assembled by hand; and a telemetry app
/// written in WebAssembly text.
enum DemoApps {
    private static let head: [UInt8] =
        [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]  // magic, version 1
        + [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]  // one type: () -> ()
        + [0x03, 0x02, 0x01, 0x00]  // one function of that type
        + [0x07, 0x0a, 0x01, 0x06] + Array("_start".utf8) + [0x00, 0x00]  // exported as _start
    static let crashing = Data(head + [0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b])

    /// An app that POSTs `body` to `url` once, presenting the device's certificate
    /// (`RAMPART_HTTPS_DEVICE_AUTH`), and exits 0 on HTTP 200, else 1.
    static func telemetry(url: String, body: String) throws -> Data {
        func quoted(_ text: String) -> String { text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        return Data(try wat2wasm("""
            (module
              (import "rampart" "https_request"
                (func $https (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "POST")
              (data (i32.const 16) "\(quoted(url))")
              (data (i32.const 1024) "\(quoted(body))")
              (func (export "_start")
                (call $exit
                  (select (i32.const 0) (i32.const 1)
                    (i32.eq (i32.const 200)
                      (call $https (i32.const 0) (i32.const 4) (i32.const 16) (i32.const \(url.utf8.count))
                        (i32.const 1024) (i32.const \(body.utf8.count)) (i32.const 1)
                        (i32.const 2048) (i32.const 1024) (i32.const 4096)))))))
            """))
    }
}

/// The version the demo's in-process device runtime reports.
let demoRuntimeVersion = "0.1.0"

struct Narrator {
    let quiet: Bool
    private var step = 0
    /// The demo's steps, one more when it starts a software TPM for the device.
    static let total = Swtpm.isInstalled ? 15 : 14

    init(quiet: Bool) { self.quiet = quiet }

    mutating func begin(_ title: String) {
        step += 1
        say("\n[\(step)/\(Self.total)] \(title)")
    }

    func say(_ text: String) {
        guard !quiet else { return }
        print(text)
        fflush(nil)
    }

    func ok(_ text: String) { say("  ✓ \(text)") }
}

func runDemo(in directory: String, narrator: inout Narrator) async throws -> DemoSummary {
    var logger = Logger(label: "rampart-demo")
    logger.logLevel = .warning
    // The device's security processor: a TPM 2.0 when swtpm can serve one, else software DICE.
    var tpm: Swtpm?
    if Swtpm.isInstalled {
        narrator.begin("Starting a software TPM 2.0 (swtpm) for the device")
        do {
            tpm = try await Swtpm.start()
            narrator.ok("TPM 2.0 at \(tpm!.tcti), its endorsement-key certificate signed by swtpm's local CA")
        } catch {
            narrator.say("  ! swtpm did not start (\(error)); the device uses software DICE instead")
        }
    }
    do {
        let summary = try await runService(in: directory, tpm: tpm, logger: logger, narrator: &narrator)
        await tpm?.stop()
        return summary
    } catch {
        await tpm?.stop()
        throw error
    }
}

private func runService(in directory: String, tpm: Swtpm?, logger: Logger, narrator: inout Narrator) async throws -> DemoSummary {
    narrator.begin("Starting the Security Service (SQLite, TLS 1.3, loopback)")
    let manufacturer = try CertificateAuthority.makeRoot(commonName: "Demo Manufacturing CA", now: Date())
    let manufacturerFile = "\(directory)/manufacturer-ca.pem"
    try manufacturer.certificate.pemString.write(toFile: manufacturerFile, atomically: true, encoding: .utf8)
    return try await LocalService.run(
        dataDirectory: "\(directory)/service", manufacturerCAPaths: [manufacturerFile],
        tpmVendorCAPaths: tpm == nil ? [] : Swtpm.localCACertificates, logger: logger
    ) { local in
        narrator.ok("listening on \(local.url); data in \(local.dataDirectory)")
        narrator.ok("root CA SHA-256 \(local.rootCAFingerprint); trusts devices endorsed by \(manufacturerFile)"
            + (tpm == nil ? "" : " and TPMs whose EK certificate swtpm's local CA signed"))
        return try await walkThrough(
            server: local.url, bootstrapToken: local.bootstrapToken, rootFingerprint: local.rootCAFingerprint,
            manufacturer: manufacturer, tpm: tpm, directory: directory, narrator: &narrator)
    }
}

private func walkThrough(
    server: String, bootstrapToken: String, rootFingerprint: String, manufacturer: CertificateAuthority, tpm: Swtpm?,
    directory: String, narrator: inout Narrator
) async throws -> DemoSummary {
    narrator.begin("rampart login — as the service operator, pinning the root CA by fingerprint")
    let operatorLogin = try await LoginCommand.login(
        server: server, token: bootstrapToken, fingerprint: rootFingerprint, caFile: nil)
    guard operatorLogin.whoAmI.principal == "operator", let rootPEM = operatorLogin.rootPEM else {
        throw CLIError("the bootstrap token did not log in as the operator")
    }
    narrator.ok("the service's root certificate matches the fingerprint; the token is an operator token")

    narrator.begin("rampart tenant create Contoso — and log in as its first Administrator")
    let (contoso, fabrikam) = try await APIClient.with(server: server, token: bootstrapToken, trustRootPEM: rootPEM) {
        client in
        (
            try await client.createTenant(CreateTenantRequest(name: "Contoso", administrator: "alice")),
            try await client.createTenant(CreateTenantRequest(name: "Fabrikam", administrator: "bob"))
        )
    }
    let tenant = contoso.tenant.id
    narrator.ok("tenant Contoso \(tenant), Administrator alice; a second tenant, Fabrikam, for contrast")
    let config = CLIConfiguration(server: server, token: contoso.token.secret, rootCAPEM: rootPEM, tenantId: tenant)
    try config.save(to: "\(directory)/config.json")
    narrator.ok("CLI configuration saved to \(directory)/config.json (mode 0600)")

    return try await APIClient.with(server: server, token: contoso.token.secret, trustRootPEM: rootPEM) { alice in
        narrator.begin("rampart product create Thermostat — with its default device groups")
        let product = try await alice.createProduct(
            CreateProductRequest(name: "Thermostat", description: "Demo product"), tenant: tenant)
        let groups = try await alice.deviceGroups(tenant: tenant, product: product.id)
        guard groups.count == 5, let fieldTest = groups.first(where: { $0.name == "Field Test" }) else {
            throw CLIError("the product did not get its five default device groups")
        }
        narrator.ok("product \(product.id): " + groups.map { "\($0.name) (\($0.osFeed.rawValue), \($0.updatePolicy.rawValue))" }.joined(separator: ", "))

        narrator.begin("rampart os publish — the operator trusts this release of the device runtime")
        // The demo runs the device runtime in this process, so the executable it measures is this one.
        let state = DeviceState(directory: "\(directory)/device")
        let components = state.launchComponents()
        guard let executable = FileManager.default.contents(atPath: components[0].path) else {
            throw CLIError("cannot read \(components[0].path) to measure the runtime")
        }
        let runtimeDigest = SHA256.hash(data: executable).hexString
        let release = try await APIClient.with(server: server, token: bootstrapToken, trustRootPEM: rootPEM) {
            try await $0.publishRelease(PublishReleaseRequest(version: demoRuntimeVersion, measurement: runtimeDigest))
        }
        narrator.ok("system software \(release.version), SHA-256 \(release.measurement.prefix(16))…, feed \(release.feed.rawValue)")

        let record: ProvisioningRecord
        if let tpm {
            narrator.begin("rampartd provision --tpm + rampart device claim --record — a TPM 2.0 device (swtpm)")
            record = try await state.provision(.init(kind: .tpm2, tcti: tpm.tcti), manufacturer: manufacturer)
            narrator.ok("identity: a restricted P-256 attestation key the TPM derives under its endorsement hierarchy and never exports")
            narrator.ok("the record carries the TPM's EK certificate and the attestation key's certificate from the manufacturer")
        } else {
            narrator.begin("rampartd provision + rampart device claim --record — a software-DICE device (swtpm is not installed)")
            record = try await state.provision(.init(kind: .softwareDICE), manufacturer: manufacturer)
            narrator.ok("unique device secret in \(state.udsPath) (0600); DeviceID certificate endorsed by the manufacturer")
        }
        let deviceID = record.deviceId
        narrator.ok("device ID = SHA-256(DeviceID public key) = \(deviceID)")
        let device = try await alice.claimDevice(ClaimDeviceRequest(record: record, deviceGroupId: fieldTest.id), tenant: tenant)
        guard device.deviceGroupId == fieldTest.id, device.productId == product.id else {
            throw CLIError("the claimed device is not in the Field Test group")
        }
        narrator.ok("the record chains to the manufacturer CA: claimed into Contoso / Thermostat / Field Test")

        narrator.begin("rampartd attest — measured launch, nonce, signed evidence, a 24-hour client certificate")
        let monitor = SecurityMonitor(processor: try state.openProcessor(), softwareVersion: demoRuntimeVersion)
        try await monitor.launch(components)
        let credential = try await DeviceSession.attest(server: server, rootPEM: rootPEM, monitor: monitor)
        let attestation = credential.result
        let deviceCertificate = try Certificate(pemEncoded: attestation.certificateChain[0])
        let hours = deviceCertificate.notValidAfter.timeIntervalSince(Date()) / 3600
        guard attestation.tenantId == tenant, (23.9...24.01).contains(hours),
            try deviceCertificate.extensions.extendedKeyUsage?.contains(.clientAuth) == true
        else {
            throw CLIError(
                "the device certificate is not a 24-hour clientAuth certificate of Contoso (tenant \(attestation.tenantId), \(hours) h)")
        }
        let deviceCertificateFile = "\(directory)/device-certificate.pem"
        try attestation.certificateChain.joined().write(toFile: deviceCertificateFile, atomically: true, encoding: .utf8)
        narrator.ok("measured launch: " + components.map(\.name).joined(separator: ", ") + "; runtime is a trusted release")
        narrator.ok("certificate CN=\(deviceID.hex.prefix(16))…, clientAuth, valid until \(date(deviceCertificate.notValidAfter)) (24 h)")

        narrator.begin("rampart app pack, image add, deployment create — a telemetry app reaches the device through TUF, A/B")
        // The device maker's cloud: nginx on loopback, accepting only clients whose certificate
        // chains to Contoso's CA (`rampart ca download-chain`).
        let webCA = try CertificateAuthority.makeRoot(commonName: "Contoso Cloud CA", now: Date())
        let webKey = P256.Signing.PrivateKey()
        let webCertificate = try webCA.issueServerCertificate(
            hostnames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], publicKey: webKey.publicKey, now: Date())
        let contosoChain = try await alice.chainPEM(tenant: tenant)
        let (image, deployment, status0, telemetryLog) = try await LocalNginx.with(
            certificatePEM: webCertificate.pemString, keyPEM: webKey.pemRepresentation, clientCAPEM: contosoChain
        ) { cloud in
            let component = ComponentID.random()
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "telemetry", "ComponentId": "\#(component)", "EntryPoint": "telemetry.wasm", "Capabilities": {"AllowedConnections": ["localhost"], "DeviceAuthentication": "\#(tenant)"}, "Limits": {"MemoryKB": 256}}"#
                    .utf8)
            let wasm = try DemoApps.telemetry(url: "https://localhost:\(cloud.port)/v1/telemetry", body: #"{"temperature": 21.5}"#)
            let package = try ImagePackage.app(manifest: manifest, wasm: wasm, version: "1.0.0", securityVersion: 1)
            let image = try await alice.addImage(package: try package.zipped(), tenant: tenant)
            let deployment = try await alice.createDeployment(images: [image.id], group: fieldTest.id, tenant: tenant)
            narrator.ok("image \(image.id) signed with Contoso's image-signing key; deployed to Field Test")
            // The device's apps present its attested certificate when the manifest allows it; the key stays in the runtime.
            let apps = AppSupervisor(
                environment: AppEnvironment(
                    directory: URL(fileURLWithPath: state.appsDirectory),
                    network: DeviceAppNetwork(credential: credential, extraTrustRootsPEM: webCA.certificate.pemString), tenantID: tenant))
            var agent = UpdateAgent(
                state: state, transport: DeviceTransport(server: server, rootPEM: rootPEM, credential: credential), monitor: monitor,
                serviceRoot: try Certificate(pemEncoded: rootPEM), tenant: tenant)
            agent.apps = apps
            guard try await agent.check() == .installed(deployment.id) else { throw CLIError("the device did not install the deployment") }
            await apps.stopAll()
            let status = try await alice.deploymentStatus(device: deviceID, tenant: tenant)
            for _ in 0..<50 where !cloud.accessLog.contains("SUCCESS") { try await Task.sleep(for: .milliseconds(20)) }
            return (image, deployment, status, cloud.accessLog)
        }
        var status = status0
        guard status.inSync, status.state == .confirmed else { throw CLIError("the device is not confirmed: \(status)") }
        narrator.ok("TUF root → timestamp → snapshot → targets verified; package signature verified for Contoso")
        narrator.ok("installed into slot \(try SlotStore(directory: state.directory).boot().active ?? "?"), started, committed: status confirmed")
        // The health check's run POSTed telemetry; it exits 0 only on HTTP 200.
        guard let line = telemetryLog.split(separator: "\n").first(where: { $0.hasPrefix("200 ") && $0.contains("SUCCESS") }),
            line.contains("CN=\(deviceID.hex)")
        else { throw CLIError("the cloud endpoint did not log the device's authenticated telemetry: \(telemetryLog)") }
        narrator.ok("the telemetry app POSTed over mutual TLS with the device's attested certificate; the cloud logged: \(line)")

        func deploy(_ wasm: Data, version: String) async throws -> (ImageDocument, DeploymentDocument) {
            let manifest = Data(
                #"{"SchemaVersion": 1, "Name": "thermostat-ui", "ComponentId": "\#(ComponentID.random())", "EntryPoint": "ui.wasm", "Capabilities": {}, "Limits": {"MemoryKB": 256}}"#
                    .utf8)
            let package = try ImagePackage.app(manifest: manifest, wasm: wasm, version: version, securityVersion: 1)
            let image = try await alice.addImage(package: try package.zipped(), tenant: tenant)
            return (image, try await alice.createDeployment(images: [image.id], group: fieldTest.id, tenant: tenant))
        }
        let transport = DeviceTransport(server: server, rootPEM: rootPEM, credential: credential)
        var agent = UpdateAgent(
            state: state, transport: transport, monitor: monitor, serviceRoot: try Certificate(pemEncoded: rootPEM), tenant: tenant)
        let reports = ReportQueue(state: state)
        agent.reporter = FailureReporter(queue: reports, deviceId: deviceID, systemSoftwareVersion: demoRuntimeVersion)
        let (crashing, _) = try await deploy(DemoApps.crashing, version: "1.1.0")
        let outcome = try await agent.check()
        status = try await alice.deploymentStatus(device: deviceID, tenant: tenant)
        guard outcome == .rolledBack("start_failed"), status.reason == "rolled_back", status.runs?.apps.map(\.imageId) == [image.id]
        else { throw CLIError("the crashing update was not rolled back: \(outcome), \(status)") }
        narrator.ok("a crashing update (traps at start) was rolled back by the device: \(status.detail ?? "")")

        narrator.begin("rampart errors list — the crash and the rollback reached the service as failure reports")
        for _ in 0..<100 where reports.count < 2 { try await Task.sleep(for: .milliseconds(20)) }
        let uploaded = try await reports.upload(via: transport)
        let buckets = try await alice.errorBuckets(tenant: tenant, image: crashing.id)
        guard let crash = buckets.first(where: { $0.category == .crash }), buckets.contains(where: { $0.category == .updateRolledBack })
        else { throw CLIError("the service has no crash and rollback buckets for the bad image: \(buckets)") }
        narrator.ok("the device queued \(uploaded) report(s) on disk and uploaded them over mutual TLS")
        narrator.ok("bucket \(crash.id.prefix(12)): \(crash.eventClass.rawValue)/\(crash.category.rawValue), \(crash.reason), frames \(crash.frames.joined(separator: " ← ")), \(crash.count) event(s) on \(crash.affectedDevices) device(s)")

        narrator.begin("Attacks that must fail")
        var refusals: [String] = []
        let bob = fabrikam.token.secret
        let stolen = try await expectFailure("Fabrikam claims Contoso's device", narrator: narrator) {
            try await APIClient.with(server: server, token: bob, trustRootPEM: rootPEM) { client in
                _ = try await client.claimDevice(ClaimDeviceRequest(record: record), tenant: fabrikam.tenant.id)
            }
        }
        guard stolen.body.error == "device_claimed_elsewhere" else { throw CLIError("wrong refusal: \(stolen)") }
        refusals.append(stolen.body.error)
        let peek = try await expectFailure("Fabrikam reads Contoso's device", narrator: narrator) {
            try await APIClient.with(server: server, token: bob, trustRootPEM: rootPEM) { client in
                _ = try await client.device(deviceID, tenant: tenant)
            }
        }
        guard peek.status == 404 else { throw CLIError("tenant isolation answered \(peek.status), not 404") }
        refusals.append(peek.body.error)
        _ = try await alice.assignRole(AssignRoleRequest(user: "carol", role: .reader), tenant: tenant)
        let carol = try await alice.createToken(CreateTokenRequest(user: "carol", name: "demo reader"), tenant: tenant)
        let write = try await expectFailure("Reader carol creates a product", narrator: narrator) {
            try await APIClient.with(server: server, token: carol.secret, trustRootPEM: rootPEM) { client in
                _ = try await client.createProduct(CreateProductRequest(name: "Sneaky"), tenant: tenant)
            }
        }
        guard write.status == 403 else { throw CLIError("a Reader's write answered \(write.status), not 403") }
        refusals.append(write.body.error)

        let counterfeitCA = try CertificateAuthority.makeRoot(commonName: "Counterfeit Devices Inc", now: Date())
        let counterfeit = try await DeviceState(directory: "\(directory)/counterfeit-device")
            .provision(.init(kind: .softwareDICE), manufacturer: counterfeitCA)
        let fake = try await expectFailure("Contoso claims a device its manufacturer never made", narrator: narrator) {
            _ = try await alice.claimDevice(ClaimDeviceRequest(record: counterfeit), tenant: tenant)
        }
        guard fake.body.error == "device_not_genuine" else { throw CLIError("wrong refusal: \(fake)") }
        refusals.append(fake.body.error)
        _ = try await APIClient.with(server: server, token: bootstrapToken, trustRootPEM: rootPEM) {
            try await $0.revokeRelease(version: demoRuntimeVersion, reason: "demo: a flaw was found")
        }
        let revoked = try await expectFailure("the device attests after the operator revoked its release", narrator: narrator) {
            _ = try await DeviceSession.attest(server: server, rootPEM: rootPEM, monitor: monitor)
        }
        guard revoked.body.error == "software_revoked" else { throw CLIError("wrong refusal: \(revoked)") }
        refusals.append(revoked.body.error)

        narrator.begin("rampart ca download-chain — and check it with openssl")
        let chain = try await alice.chainPEM(tenant: tenant)
        let chainFile = "\(directory)/contoso-chain.pem"
        try chain.write(toFile: chainFile, atomically: true, encoding: .utf8)
        let certificates = try RampartPKI.certificates(fromPEMBundle: chain)
        guard certificates.count == 3 else { throw CLIError("the chain has \(certificates.count) certificates, not 3") }
        for (name, certificate) in zip(["Tenant CA", "Intermediate CA", "Root CA"], certificates) {
            let years = certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore) / (365.25 * 86_400)
            narrator.ok("\(name): \(String(format: "%.0f", years)) years, until \(date(certificate.notValidAfter))")
        }
        let verified = try verifyWithOpenSSL(certificates, directory: directory)
        narrator.ok(verified ? "openssl verify: OK" : "openssl not installed; external check skipped")
        let deviceVerified = try verifyWithOpenSSL(
            [deviceCertificate] + certificates, directory: directory, purpose: "sslclient")
        narrator.ok(deviceVerified ? "openssl verify -purpose sslclient (device certificate): OK" : "openssl not installed; external check skipped")

        narrator.begin("rampart device release — and claim again")
        try await alice.releaseDevice(deviceID, tenant: tenant)
        _ = try await alice.claimDevice(ClaimDeviceRequest(record: record, deviceGroupId: fieldTest.id), tenant: tenant)
        narrator.ok("released by the Administrator and claimed again")

        narrator.begin("rampart audit list — what happened, as the service recorded it")
        let audit = try await alice.auditEntries(tenant: tenant, limit: 100)
        let actions = audit.map(\.action)
        guard audit.filter({ $0.action == "device.claim" && $0.outcome == "success" }).count == 2,
            audit.contains(where: { $0.action == "device.claim" && $0.outcome == "device_not_genuine" }),
            actions.contains("device.release"),
            audit.contains(where: { $0.actor == "carol" && $0.outcome == "forbidden" })
        else { throw CLIError("the audit log is missing entries: \(actions)") }
        for entry in audit.reversed() {
            narrator.say("    \(date(entry.time))  \(entry.actor.padding(toLength: 8, withPad: " ", startingAt: 0)) \(entry.action.padding(toLength: 16, withPad: " ", startingAt: 0)) \(entry.outcome)")
        }

        narrator.begin("Done")
        narrator.ok("every step really happened; files are in \(directory)")
        narrator.say("""
              service data:   \(directory)/service (rampart.sqlite, pki/ keys 0600, tls/)
              CA chain:       \(chainFile)
              CLI config:     \(directory)/config.json
            The service stops with the demo; run `rampart-server --data-dir \(directory)/service` to keep it.
            """)
        return DemoSummary(
            securityProcessor: record.securityProcessor, directory: directory, server: server, rootCAFingerprint: rootFingerprint, tenantId: tenant,
            productId: product.id, deviceId: deviceID, chainFile: chainFile, chainVerifiedByOpenSSL: verified,
            deviceCertificateFile: deviceCertificateFile, deviceCertificateVerifiedByOpenSSL: deviceVerified,
            refusals: refusals, auditEntries: audit.count, installedImageId: image.id, rollbackReason: status.reason ?? "",
            errorBuckets: buckets.map { "\($0.eventClass.rawValue)/\($0.category.rawValue)" }.sorted(), telemetryLogLine: String(line))
    }
}

private func expectFailure(
    _ what: String, narrator: Narrator, _ attempt: () async throws -> Void
) async throws -> APIFailure {
    do {
        try await attempt()
    } catch let failure as APIFailure {
        narrator.ok("\(what): refused — \(failure.body.message) [\(failure.body.error)]")
        return failure
    }
    throw CLIError("\(what) was allowed; it must be refused")
}

/// Checks a chain (leaf first, root last) with OpenSSL, a verifier we did not write.
/// Returns false when openssl is absent.
private func verifyWithOpenSSL(_ chain: [Certificate], directory: String, purpose: String? = nil) throws -> Bool {
    let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let openssl else { return false }
    let leaf = "\(directory)/verify-leaf.pem", untrusted = "\(directory)/verify-untrusted.pem", root = "\(directory)/verify-root.pem"
    try chain[0].pemString.write(toFile: leaf, atomically: true, encoding: .utf8)
    try chain.dropFirst().dropLast().map(\.pemString).joined().write(toFile: untrusted, atomically: true, encoding: .utf8)
    try chain[chain.count - 1].pemString.write(toFile: root, atomically: true, encoding: .utf8)
    defer { [leaf, untrusted, root].forEach { try? FileManager.default.removeItem(atPath: $0) } }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: openssl)
    process.arguments = ["verify", "-CAfile", root, "-untrusted", untrusted] + (purpose.map { ["-purpose", $0] } ?? []) + [leaf]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    process.waitUntilExit()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    guard process.terminationStatus == 0 else { throw CLIError("openssl verify refused the chain: \(output)") }
    return true
}

/// A new directory under the system's temporary directory.
func makeTemporaryDirectory(prefix: String) throws -> String {
    var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("\(prefix)-XXXXXX").utf8CString)
    guard mkdtemp(&template) != nil else { throw CLIError("cannot create a temporary directory") }
    return String(cString: template)
}
