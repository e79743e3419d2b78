// swift-tools-version: 6.1
import PackageDescription

let strictSwift6: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "runwarden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runwarden", targets: ["runwarden"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(name: "RunwardenCore", swiftSettings: strictSwift6),
        .target(
            name: "RunwardenStore",
            dependencies: ["RunwardenCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSwift6
        ),
        .target(
            name: "RunwardenStoreSQLite",
            dependencies: [
                "RunwardenStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift6
        ),
        .target(
            name: "RunwardenStorePostgres",
            dependencies: [
                "RunwardenStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift6
        ),
        .target(name: "RunwardenTestSupport", swiftSettings: strictSwift6),
        .target(
            name: "RunwardenServer",
            dependencies: [
                "RunwardenCore",
                "RunwardenStore",
                "RunwardenStoreSQLite",
                "RunwardenStorePostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [
                .embedInCode("Resources/dashboard.html"), .embedInCode("Resources/dashboard_views.js"),
                .embedInCode("Resources/openapi.json"),
            ],
            swiftSettings: strictSwift6
        ),
        .target(
            name: "RunwardenClient",
            dependencies: [
                "RunwardenCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift6
        ),
        .target(
            name: "RunwardenRunner",
            dependencies: [
                "RunwardenCore",
                "RunwardenClient",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift6
        ),
        .executableTarget(
            name: "runwarden",
            dependencies: [
                "RunwardenServer",
                "RunwardenClient",
                "RunwardenRunner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift6
        ),
        // `swift run -c release runwarden-bench`: the benchmark of BENCHMARKS.md.
        .executableTarget(
            name: "runwarden-bench",
            dependencies: [
                "RunwardenCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/runwarden-bench",
            swiftSettings: strictSwift6
        ),
        .testTarget(name: "RunwardenCoreTests", dependencies: ["RunwardenCore", "RunwardenTestSupport"], swiftSettings: strictSwift6),
        .testTarget(
            name: "RunwardenStoreTests",
            dependencies: [
                "RunwardenStore", "RunwardenStoreSQLite", "RunwardenStorePostgres", "RunwardenTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "RunwardenServerTests",
            dependencies: [
                "RunwardenServer", "RunwardenStoreSQLite", "RunwardenTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "RunwardenEndToEndTests",
            dependencies: [
                "runwarden", "RunwardenClient", "RunwardenCore", "RunwardenTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSwift6
        ),
    ]
)
