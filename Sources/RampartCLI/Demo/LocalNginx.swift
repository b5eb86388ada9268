public import Foundation
import RampartDevice

/// A throwaway nginx (Debian's) serving HTTPS on a free loopback port from a temporary
/// directory, demanding client certificates from `clientCAPEM` — the device maker's cloud
/// endpoint in the demo and the app network test. Every request it accepts is answered 200
/// with `accepted <client subject>` and logged with that subject, except under `/files/`,
/// where it serves `files` as static files (the benchmarks' ceiling), without logging.
public struct LocalNginx: Sendable {
    public let directory: String
    public let port: Int
    let pid: pid_t

    public var accessLog: String { (try? String(contentsOfFile: "\(directory)/access.log", encoding: .utf8)) ?? "" }

    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") }

    /// Runs `body` with nginx serving `certificatePEM`/`keyPEM`, stopped and deleted afterwards.
    public static func with<T: Sendable>(
        certificatePEM: String, keyPEM: String, clientCAPEM: String, files: [String: Data] = [:],
        _ body: (LocalNginx) async throws -> T
    ) async throws -> T {
        guard isInstalled else { throw CLIError("nginx is not installed: run scripts/install-deps.sh") }
        let directory = try makeTemporaryDirectory(prefix: "rampart-nginx")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try certificatePEM.write(toFile: "\(directory)/server.pem", atomically: true, encoding: .utf8)
        try keyPEM.write(toFile: "\(directory)/server.key", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory)/files", withIntermediateDirectories: true)
        for (name, bytes) in files { try bytes.write(to: URL(fileURLWithPath: "\(directory)/files/\(name)")) }
        try clientCAPEM.write(toFile: "\(directory)/clients.pem", atomically: true, encoding: .utf8)
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try ChildProcess.freeLoopbackPort()
            try configuration(directory: directory, port: port).write(toFile: "\(directory)/nginx.conf", atomically: true, encoding: .utf8)
            let pid = try ChildProcess.spawn(
                "/usr/sbin/nginx", ["-p", directory, "-c", "\(directory)/nginx.conf", "-e", "\(directory)/error.log"],
                output: "\(directory)/stdout.log")
            let server = LocalNginx(directory: directory, port: port, pid: pid)
            if await server.waitUntilListening() {
                defer { server.stop() }
                return try await body(server)
            }
            server.stop()
            lastError = CLIError("nginx did not listen on \(port): \((try? String(contentsOfFile: "\(directory)/error.log", encoding: .utf8)) ?? "")")
        }
        throw lastError!
    }



    /// Runs `body` with nginx balancing TCP connections round robin over `upstreams`
    /// (`host:port`) on a free loopback port, so TLS, mutual TLS included, reaches the nodes
    /// themselves. Stopped with SIGTERM and deleted afterwards.
    public static func balancing<T: Sendable>(_ upstreams: [String], _ body: (Int) async throws -> T) async throws -> T {
        guard FileManager.default.fileExists(atPath: "/usr/lib/nginx/modules/ngx_stream_module.so") else {
            throw CLIError("nginx's stream module is missing: run scripts/install-deps.sh")
        }
        let directory = try makeTemporaryDirectory(prefix: "rampart-balancer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freeLoopbackPort()
        try """
            daemon off;
            load_module /usr/lib/nginx/modules/ngx_stream_module.so;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log info;
            events { worker_connections 1024; }
            stream {
              upstream nodes { \(upstreams.map { "server \($0);" }.joined(separator: " ")) }
              server { listen 127.0.0.1:\(port); proxy_pass nodes; }
            }
            """.write(toFile: "\(directory)/nginx.conf", atomically: true, encoding: .utf8)
        let pid = try ChildProcess.spawn(
            "/usr/sbin/nginx", ["-p", directory, "-c", "\(directory)/nginx.conf", "-e", "\(directory)/error.log"],
            output: "\(directory)/nginx.log")
        let nginx = LocalNginx(directory: directory, port: port, pid: pid)
        guard await nginx.waitUntilListening() else {
            nginx.stop()
            throw CLIError("nginx did not start: \((try? String(contentsOfFile: "\(directory)/error.log", encoding: .utf8)) ?? "")")
        }
        do {
            let result = try await body(port)
            switch nginx.stop() {
            case 0: return result
            case nil: throw CLIError("nginx did not stop on SIGTERM")
            case let status?: throw CLIError("nginx exited with status \(status)")
            }
        } catch {
            nginx.stop()
            throw error
        }
    }

    static func configuration(directory: String, port: Int) -> String {
        """
        daemon off;
        \(geteuid() == 0 ? "user root;  # workers must read this private (0700) directory" : "")
        worker_processes auto;
        pid \(directory)/nginx.pid;
        error_log \(directory)/error.log info;
        events { worker_connections 64; }
        http {
          client_body_temp_path \(directory)/body;
          proxy_temp_path \(directory)/proxy;
          fastcgi_temp_path \(directory)/fastcgi;
          uwsgi_temp_path \(directory)/uwsgi;
          scgi_temp_path \(directory)/scgi;
          log_format clients '$status "$ssl_client_s_dn" $ssl_client_verify "$request"';
          access_log \(directory)/access.log clients;
          server {
            listen 127.0.0.1:\(port) ssl;
            server_name localhost;
            ssl_certificate \(directory)/server.pem;
            ssl_certificate_key \(directory)/server.key;
            ssl_client_certificate \(directory)/clients.pem;
            ssl_verify_client on;
            ssl_verify_depth 4;
            location / { return 200 "accepted $ssl_client_s_dn\\n"; }
            location /files/ { alias \(directory)/files/; access_log off; }
          }
        }
        """
    }

    func waitUntilListening() async -> Bool {
        for _ in 0..<100 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if connected == 0 { return true }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Stops nginx with SIGTERM, killing it when it has not gone within 2 s; returns its
    /// exit status when it stopped by itself, nil when it had to be killed.
    @discardableResult
    public func stop() -> Int32? {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 where waitpid(pid, &status, WNOHANG) == 0 { usleep(20_000) }
        guard kill(pid, 0) == 0 else { return status }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return nil
    }
}
