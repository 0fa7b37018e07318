// swift-tools-version:6.1
import Foundation
import PackageDescription

/// Where the system has SQLite's archive beside its shared library (Debian's libsqlite3-dev
/// does; some distributions ship only the shared library), portaudit links it in: README
/// "Benchmark". Elsewhere it links the shared library, as GRDB asks.
let sqliteArchive = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
    .contains { FileManager.default.fileExists(atPath: $0 + "/libsqlite3.a") }

let package = Package(
    name: "portaudit",
    products: [
        .executable(name: "portaudit", targets: ["portaudit"]),
        .library(name: "PortAuditKit", targets: ["PortAuditKit"]),
    ],
    dependencies: [
        // SQLite access, migrations, WAL and busy handling, against the system's SQLite.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // RFC 4180 parsing of the IANA registry (quoted, multi-line fields) at build time only.
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
    ],
    targets: [
        // Kernel headers (netlink, sock_diag) that Glibc does not export to Swift.
        .target(name: "CLinuxDiag"),
        // Build-time tool: turns Migrations/*.sql and the IANA CSV into Swift literals,
        // so the binary carries its schema and registry wherever it is copied.
        .executableTarget(
            name: "EmbedResources",
            dependencies: [.product(name: "SwiftCSV", package: "SwiftCSV")]
        ),
        .plugin(
            name: "EmbedResourcesPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedResources"]
        ),
        .target(
            name: "PortAuditKit",
            dependencies: [
                "CLinuxDiag",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The raw C API, for `portaudit sql`: its own read-only authorizer.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            plugins: ["EmbedResourcesPlugin"]
        ),
        .executableTarget(
            name: "portaudit",
            dependencies: [
                "PortAuditKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // A static Swift runtime is linked with -export-dynamic (the toolchain's
            // static-stdlib-args.lnk), which exported this package's own 8,400 symbols for the
            // loader and each dladdr to search at every start: a 50-socket snapshot took 1.2 ms
            // longer. Nothing looks symbols up in this binary; backtraces read .symtab.
            // The static runtime also asks for -lstdc++, and GRDB for -lsqlite3, which the
            // linker finds as shared libraries first; the loader then mapped and bound them at
            // every start (README "Benchmark"). Linker/static-libstdc++ and Linker/static-sqlite
            // each hold a linker script by that name, searched first, which links the archive
            // instead (libstdc++-dev ships both; see `sqliteArchive` for SQLite).
            linkerSettings: [.unsafeFlags([
                "-Xlinker", "--no-export-dynamic",
                "-L", Context.packageDirectory + "/Linker/static-libstdc++",
            ] + (sqliteArchive ? ["-L", Context.packageDirectory + "/Linker/static-sqlite"] : []))]
        ),
        .testTarget(
            name: "PortAuditKitTests",
            dependencies: ["PortAuditKit", .product(name: "GRDB", package: "GRDB.swift")]
        ),
    ]
)
