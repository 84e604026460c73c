// swift-tools-version:6.0
import PackageDescription

/// Upcoming language features on every target of ours: a member is visible only in a file that
/// imports its module, so each file says what it uses.
let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"), .enableUpcomingFeature("InternalImportsByDefault")
]

/// Release builds optimise across modules: DNSWire's small functions are inlined into the query
/// path in Engine, and Engine's into the receive loops in Listeners (without this,
/// `@inline(__always)` stops at the module boundary).
let crossModule: [SwiftSetting] =
    [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))] + upcoming

/// Geo and Steering walk whole databases at load (GeoLite2-City: ~4M tree nodes): optimised even in
/// debug builds, so the test suite's servers start in seconds.
let optimisedAlways: [SwiftSetting] = crossModule + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "lodestar",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lodestar", targets: ["lodestar"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6")
    ],
    targets: [
        .systemLibrary(name: "CLDNS", pkgConfig: "ldns", providers: [.apt(["libldns-dev"])]),
        .systemLibrary(name: "CMaxMindDB", pkgConfig: "libmaxminddb", providers: [.apt(["libmaxminddb-dev"])]),
        .target(name: "CLodestarSys"),
        .target(name: "DNSWire", swiftSettings: crossModule),
        .target(name: "Zones", dependencies: ["DNSWire", "CLDNS"], swiftSettings: crossModule),
        // Defences for the open internet: DNS cookies and the response rate limiter's table.
        .target(name: "Protection", dependencies: ["DNSWire", "CLodestarSys"], swiftSettings: crossModule),
        .target(name: "Geo", dependencies: ["CMaxMindDB"], swiftSettings: optimisedAlways),
        // The health model: check specs and their state machine, the admin's overrides, and the board
        // that combines them into the view the query path reads. No NIO: the config and the engine use it.
        .target(name: "Health", swiftSettings: crossModule),
        // The control side's settings as plain values (prober, anycast, cluster): what Config
        // produces for the modules that link NIO, without linking it.
        .target(name: "Settings", dependencies: ["Health"], swiftSettings: crossModule),
        .target(name: "Steering", dependencies: ["Geo", "Health", "CLodestarSys"], swiftSettings: optimisedAlways),
        .target(
            name: "Prober",
            dependencies: [
                "DNSWire", "Health", "Settings", "CLodestarSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        .target(
            name: "Anycast",
            dependencies: [
                "Prober", "Health", "Settings", "CLodestarSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        // One blocking HTTP/1.1 client for the peers a thread of ours waits on (etcd, and the admin
        // API for `lodestar ctl`): NIOHTTP1 encodes and decodes, over a socket or TLS, under deadlines.
        .target(
            name: "HTTPClient",
            dependencies: [
                "Settings",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl")
            ],
            swiftSettings: crossModule
        ),
        // Many POPs, one view: the etcd v3 client (JSON gateway, blocking, on its own threads),
        // shared overrides, health votes and their consensus.
        .target(
            name: "Cluster",
            dependencies: [
                "Health", "Settings", "HTTPClient", "CLodestarSys",
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        // Answers one query from an immutable snapshot into a buffer: the hot path. No NIO, no Yams,
        // no Logging, no Foundation: it must stay allocation-free and inlinable across modules.
        .target(
            name: "Engine", dependencies: ["DNSWire", "Zones", "Health", "Steering", "Protection", "CLodestarSys"],
            swiftSettings: crossModule),
        // YAML to a validated model with file:line errors; the only importer of Yams.
        .target(
            name: "Config",
            dependencies: [
                "DNSWire", "Zones", "Health", "Settings", "Steering", "Protection",
                .product(name: "Yams", package: "Yams")
            ],
            swiftSettings: crossModule
        ),
        // Moves packets: the UDP batch loops and the TCP server, over a snapshot store.
        .target(
            name: "Listeners",
            dependencies: [
                "Engine", "Protection", "DNSWire", "CLodestarSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        // The admin HTTP API, Prometheus text and explain, over read-only views of the others and
        // the `AdminControl` the composition root hands it.
        .target(
            name: "Admin",
            dependencies: [
                "Engine", "DNSWire", "Zones", "Geo", "Health", "Settings", "Steering", "Prober", "Anycast", "Cluster",
                "CLodestarSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        // The composition root: loads snapshots, owns health and the state file, starts and stops
        // the others, handles signals and reloads.
        .target(
            name: "Server",
            dependencies: [
                "Engine", "Config", "Listeners", "Admin", "DNSWire", "Zones", "Geo", "Health", "Settings", "Steering",
                "Prober",
                "Anycast", "Protection", "Cluster", "HTTPClient", "CLodestarSys",
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        .executableTarget(
            name: "lodestar",
            dependencies: [
                "Server", "Config", "Admin", "HTTPClient", "DNSWire", "Zones", "Health", "Settings", "Steering", "Geo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: crossModule
        ),
        // Fuzzing harnesses (FUZZING.md): under libFuzzer with `scripts/fuzz.sh`; otherwise a
        // replay of inputs, which the test suite runs over the committed corpora.
        .executableTarget(
            name: "lodestar-fuzz",
            dependencies: [
                "Server", "Admin", "Config", "Engine", "DNSWire", "Zones", "Health", "Settings", "Anycast",
                "Protection", "Cluster",
                "HTTPClient", "Geo",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ],
            path: "Fuzz"
        ),
        .testTarget(name: "DNSWireTests", dependencies: ["DNSWire", "Protection"]),
        .testTarget(name: "ZonesTests", dependencies: ["Zones", "DNSWire"]),
        .testTarget(name: "GeoTests", dependencies: ["Geo", "OriginSupport"]),
        .testTarget(name: "SteeringTests", dependencies: ["Steering", "Health", "Geo", "OriginSupport"]),
        .testTarget(name: "HealthTests", dependencies: ["Health"]),
        .target(name: "OriginSupport", path: "Tests/OriginSupport"),
        .testTarget(name: "AnycastTests", dependencies: ["Anycast", "Health", "Settings"]),
        .testTarget(
            name: "ProberTests",
            dependencies: [
                "Prober", "Health", "Settings", "Steering", "OriginSupport",
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")
            ]),
        .testTarget(
            name: "EngineTests",
            dependencies: [
                "Engine", "Server", "Config", "Zones", "DNSWire", "Health", "Steering", "CLodestarSys", "OriginSupport"
            ]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "DNSWire", "Health", "Settings", "Steering"]),
        .testTarget(name: "ArchitectureTests"),
        .testTarget(name: "ClusterUnitTests", dependencies: ["Cluster", "Health", "Settings"]),
        .testTarget(name: "IntegrationTests", dependencies: ["DNSWire", "Zones", "OriginSupport"])
    ]
)
