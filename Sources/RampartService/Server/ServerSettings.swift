public import Foundation
import Logging

/// One source of server settings: command-line flags, the environment, or a JSON file.
/// Every field is optional; ``ServerConfiguration/init(layers:)`` takes each setting
/// from the first layer that has it.
///
/// A configuration file uses the same names as the fields:
///
/// ```json
/// { "dataDirectory": "/var/lib/rampart", "port": 8443,
///   "database": "postgres://rampart@db/rampart", "keyEncryptionKeyFile": "/etc/rampart/kek",
///   "hostnames": ["rampart.example.com"], "logLevel": "info" }
/// ```
public struct ServerSettings: Codable, Sendable, Equatable {
    public var dataDirectory: String?
    public var host: String?
    public var port: Int?
    public var database: String?
    /// A file holding the key-encryption key (never the key itself in a settings file).
    public var keyEncryptionKeyFile: String?
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var hostnames: [String]?
    public var bootstrapTokenFile: String?
    public var logLevel: String?
    public var manufacturerCAs: [String]?
    public var tpmVendorCAs: [String]?
    /// Days failure reports are kept (14 when unset).
    public var errorRetentionDays: Int?

    public init(
        dataDirectory: String? = nil, host: String? = nil, port: Int? = nil, database: String? = nil,
        keyEncryptionKeyFile: String? = nil, tlsCertificate: String? = nil, tlsKey: String? = nil,
        hostnames: [String]? = nil, bootstrapTokenFile: String? = nil, logLevel: String? = nil,
        manufacturerCAs: [String]? = nil, tpmVendorCAs: [String]? = nil, errorRetentionDays: Int? = nil
    ) {
        self.errorRetentionDays = errorRetentionDays
        self.manufacturerCAs = manufacturerCAs
        self.tpmVendorCAs = tpmVendorCAs
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.database = database
        self.keyEncryptionKeyFile = keyEncryptionKeyFile
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.hostnames = hostnames
        self.bootstrapTokenFile = bootstrapTokenFile
        self.logLevel = logLevel
    }

    static let knownKeys: Set<String> = [
        "dataDirectory", "host", "port", "database", "keyEncryptionKeyFile", "tlsCertificate", "tlsKey", "hostnames",
        "bootstrapTokenFile", "logLevel", "manufacturerCAs", "tpmVendorCAs", "errorRetentionDays",
    ]

    /// The `RAMPART_*` variables. `RAMPART_KEY_ENCRYPTION_KEY` (the key itself) is read by
    /// ``ServerConfiguration/init(layers:environment:)``, not here.
    public init(environment: [String: String]) throws {
        self.init(
            dataDirectory: environment["RAMPART_DATA_DIR"], host: environment["RAMPART_HOST"],
            port: try environment["RAMPART_PORT"].map { text in
                guard let port = Int(text) else { throw ConfigurationError("RAMPART_PORT '\(text)' is not a port") }
                return port
            },
            database: environment["RAMPART_DATABASE_URL"],
            keyEncryptionKeyFile: environment["RAMPART_KEY_ENCRYPTION_KEY_FILE"],
            tlsCertificate: environment["RAMPART_TLS_CERT"], tlsKey: environment["RAMPART_TLS_KEY"],
            hostnames: environment["RAMPART_HOSTNAMES"].map { $0.split(separator: ",").map(String.init) },
            logLevel: environment["RAMPART_LOG_LEVEL"],
            manufacturerCAs: environment["RAMPART_MANUFACTURER_CAS"].map { $0.split(separator: ",").map(String.init) },
            tpmVendorCAs: environment["RAMPART_TPM_VENDOR_CAS"].map { $0.split(separator: ",").map(String.init) },
            errorRetentionDays: try environment["RAMPART_ERROR_RETENTION_DAYS"].map { text in
                guard let days = Int(text) else { throw ConfigurationError("RAMPART_ERROR_RETENTION_DAYS '\(text)' is not a number of days") }
                return days
            })
    }

    /// Reads a JSON settings file, refusing unknown keys so a typo is not silently ignored.
    public init(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read the configuration file \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigurationError("\(path) is not a JSON object")
        }
        let unknown = Set(object.keys).subtracting(Self.knownKeys)
        guard unknown.isEmpty else {
            throw ConfigurationError(
                "\(path): unknown setting(s) \(unknown.sorted().joined(separator: ", ")); known: \(Self.knownKeys.sorted().joined(separator: ", "))")
        }
        do {
            self = try JSONDecoder().decode(ServerSettings.self, from: data)
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
    }
}

extension ServerConfiguration {
    /// Merges settings, earlier layers winning (flags, then environment, then file), over
    /// the defaults, and validates the result.
    public init(layers: [ServerSettings], environment: [String: String] = [:]) throws {
        func first<T>(_ key: KeyPath<ServerSettings, T?>) -> T? { layers.lazy.compactMap { $0[keyPath: key] }.first }
        self.init()
        dataDirectory = first(\.dataDirectory) ?? dataDirectory
        host = first(\.host) ?? host
        port = first(\.port) ?? port
        guard (0...65535).contains(port) else { throw ConfigurationError("port \(port) is not between 0 and 65535") }
        databaseURL = first(\.database)
        if let file = first(\.keyEncryptionKeyFile) {
            guard let key = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError("cannot read the key-encryption key file \(file)")
            }
            keyEncryptionKey = key
        } else {
            keyEncryptionKey = environment["RAMPART_KEY_ENCRYPTION_KEY"]
        }
        tlsCertificatePath = first(\.tlsCertificate)
        tlsKeyPath = first(\.tlsKey)
        hostnames = first(\.hostnames) ?? []
        bootstrapTokenFile = first(\.bootstrapTokenFile)
        manufacturerCAPaths = first(\.manufacturerCAs) ?? []
        tpmVendorCAPaths = first(\.tpmVendorCAs) ?? []
        errorRetentionDays = first(\.errorRetentionDays) ?? errorRetentionDays
        guard (1...3650).contains(errorRetentionDays) else {
            throw ConfigurationError("error retention of \(errorRetentionDays) days is not between 1 and 3650")
        }
        if let level = first(\.logLevel) {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw ConfigurationError("unknown log level '\(level)': use trace, debug, info, notice, warning, error or critical")
            }
            logLevel = parsed
        }
    }
}
