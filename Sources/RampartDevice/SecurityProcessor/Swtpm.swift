public import Foundation

/// A throwaway software TPM (Debian's swtpm): `swtpm_setup` makes a TPM 2.0 with
/// endorsement-key certificates from swtpm's local CA in a temporary directory, then
/// `swtpm` serves it on free loopback ports until stopped. The demo's device and the TPM
/// tests use it; a real device names its TPM's TCTI (`device:/dev/tpmrm0`) instead.
public struct Swtpm: Sendable {
    /// The TCTI string for libtss2: `swtpm:host=127.0.0.1,port=P`.
    public var tcti: String { "swtpm:host=127.0.0.1,port=\(port)" }
    public let directory: String
    let port: Int
    let controlPort: Int

    /// swtpm's local CA, which signs the EK certificates: the issuing CA and its root.
    public static let localCACertificates = [
        "/var/lib/swtpm-localca/issuercert.pem", "/var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem",
    ]

    public static var isInstalled: Bool {
        ["/usr/bin/swtpm", "/usr/bin/swtpm_setup", "/usr/bin/swtpm_ioctl"].allSatisfy(FileManager.default.isExecutableFile)
    }

    /// Runs `body` with a fresh TPM, stopped and deleted afterwards.
    public static func with<T: Sendable>(_ body: (Swtpm) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let result = try await body(server)
            await server.stop()
            try? FileManager.default.removeItem(atPath: server.directory)
            return result
        } catch {
            await server.stop()
            try? FileManager.default.removeItem(atPath: server.directory)
            throw error
        }
    }

    public static func start() async throws -> Swtpm {
        guard isInstalled else { throw failure("swtpm is not installed: run scripts/install-deps.sh") }
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("rampart-swtpm-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw failure("mkdtemp failed: \(String(cString: strerror(errno)))") }
        let directory = String(cString: template)
        let (status, output) = try await ChildProcess.run(
            "/usr/bin/swtpm_setup",
            ["--tpm2", "--tpmstate", directory, "--create-ek-cert", "--create-platform-cert", "--overwrite"])
        guard status == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw failure("swtpm_setup failed: \(output)")
        }
        // libtss2's swtpm TCTI finds the control channel at the command port + 1.
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try ChildProcess.freeLoopbackPort()
            let server = Swtpm(directory: directory, port: port, controlPort: port + 1)
            do {
                try await server.run()
                return server
            } catch {
                lastError = error
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError ?? failure("swtpm did not start")
    }

    /// Starts swtpm on this TPM's state (again, after ``stop()``: the TPM keeps its state).
    public func run() async throws {
        let (status, output) = try await ChildProcess.run(
            "/usr/bin/swtpm",
            [
                "socket", "--tpm2", "--tpmstate", "dir=\(directory)",
                "--server", "type=tcp,port=\(port),bindaddr=127.0.0.1",
                "--ctrl", "type=tcp,port=\(controlPort),bindaddr=127.0.0.1",
                "--flags", "not-need-init,startup-clear", "--pid", "file=\(directory)/swtpm.pid",
                "--log", "file=\(directory)/swtpm.log", "--daemon",
            ])
        guard status == 0 else { throw Self.failure("swtpm failed to start: \(output)") }
        for _ in 0..<100 {
            if Self.accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Self.failure("swtpm did not listen on port \(port) within 5 s")
    }

    /// Shuts swtpm down cleanly (its state stays in ``directory``).
    public func stop() async {
        _ = try? await ChildProcess.run("/usr/bin/swtpm_ioctl", ["--tcp", "127.0.0.1:\(controlPort)", "-s"])
        for _ in 0..<100 where FileManager.default.fileExists(atPath: "\(directory)/swtpm.pid") {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    static func failure(_ message: String) -> DeviceError { DeviceError(code: "swtpm_failed", message: message) }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
