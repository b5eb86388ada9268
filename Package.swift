// swift-tools-version: 6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Rampart",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rampart", targets: ["rampart"]),
        .executable(name: "rampart-server", targets: ["rampart-server"]),
        .executable(name: "rampartd", targets: ["rampartd"]),
        .library(name: "RampartModel", targets: ["RampartModel"]),
        .library(name: "RampartPKI", targets: ["RampartPKI"]),
        .library(name: "RampartService", targets: ["RampartService"]),
        .library(name: "RampartDevice", targets: ["RampartDevice"]),
        .library(name: "RampartImage", targets: ["RampartImage"]),
        .library(name: "RampartTUF", targets: ["RampartTUF"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
        .package(url: "https://github.com/swiftwasm/WasmKit.git", from: "0.4.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Shared vocabulary: typed identifiers, roles, API documents, the error shape.
        .target(
            name: "RampartModel",
            swiftSettings: upcoming
        ),
        // Certificate authorities and certificate issuance (Root → Intermediate → Tenant CA → leaf).
        .target(
            name: "RampartPKI",
            dependencies: [
                "RampartModel",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: upcoming
        ),
        // The Security Service: HTTPS API, storage (SQLite or PostgreSQL), authorization, audit.
        .target(
            name: "RampartService",
            dependencies: [
                "RampartModel",
                "RampartPKI",
                "RampartImage",
                "RampartTUF",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "CSQLite3",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: upcoming
        ),
        // The device runtime (rampartd). Filled in by the attestation, update and app-host work.
        // Image packages: the format, its limits, app manifests, the wasm check. Shared by the
        // CLI (app pack), the service (intake) and the device (install).
        .target(
            name: "RampartImage",
            dependencies: [
                "RampartModel",
                "RampartPKI",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
            ],
            swiftSettings: upcoming
        ),
        // The Update Framework: canonical JSON, the four roles' metadata, signing, and the
        // client's trusted-metadata state machine. No I/O; used by the service and the device.
        .target(
            name: "RampartTUF",
            dependencies: ["RampartModel", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: upcoming
        ),
        // libsqlite3 from Debian's libsqlite3-dev, the service's embedded database engine.
        .systemLibrary(name: "CSQLite3", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // libtss2 (TPM 2.0 ESYS) from Debian's libtss2-dev, for the TPM security processor.
        .systemLibrary(name: "CTSS2", pkgConfig: "tss2-esys", providers: [.apt(["libtss2-dev"])]),
        // Linux GPIO (uAPI v2), I2C and spidev ioctls, for peripherals on real boards.
        .target(name: "CLinuxPeripherals"),
        .target(
            name: "RampartDevice",
            dependencies: [
                "RampartModel",
                "RampartPKI",
                "RampartImage",
                "RampartTUF",
                "CTSS2",
                "CLinuxPeripherals",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: upcoming
        ),
        // The operator and developer tool: an HTTPS client of the service plus the command tree.
        .target(
            name: "RampartCLI",
            dependencies: [
                .product(name: "WAT", package: "WasmKit"),
                "RampartModel",
                "RampartService",
                "RampartDevice",
                "RampartImage",
                "RampartPKI",
                "RampartTUF",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "rampart",
            dependencies: ["RampartCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: upcoming
        ),
        // The device runtime's command line.
        .executableTarget(
            name: "rampartd",
            dependencies: [
                "RampartCLI", "RampartDevice", "RampartPKI", "RampartModel", "RampartImage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "rampart-server",
            dependencies: [
                "RampartService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: upcoming
        ),
        // Real servers for tests (PostgreSQL) and a process runner; shared by the test targets.
        .target(
            name: "RampartTestSupport",
            dependencies: ["RampartCLI", "RampartDevice", "RampartPKI", "RampartModel", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/Support", swiftSettings: upcoming),
        .testTarget(name: "RampartModelTests", dependencies: ["RampartModel", "RampartTestSupport"], swiftSettings: upcoming),
        .testTarget(
            name: "RampartImageTests",
            dependencies: [
                "RampartImage", "RampartModel", "RampartPKI", "RampartTestSupport",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RampartTUFTests",
            dependencies: ["RampartTUF", "RampartDevice", "RampartTestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RampartDeviceTests",
            dependencies: [
                "RampartDevice", "RampartPKI", "RampartModel", "RampartImage", "RampartTestSupport",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RampartPKITests",
            dependencies: [
                "RampartPKI", "RampartTestSupport", .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RampartServiceTests",
            dependencies: [
                "RampartService", "RampartModel", "RampartPKI", "RampartDevice", "RampartImage", "RampartTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RampartCLITests",
            dependencies: [
                "RampartCLI", "RampartService", "RampartModel", "RampartPKI", "RampartDevice", "RampartTestSupport",
                "RampartImage",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: upcoming
        ),
    ]
)
