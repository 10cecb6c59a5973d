// swift-tools-version:6.0
import Foundation
import PackageDescription

// Speed: SwiftPM's release builds target baseline x86-64 (SSE2), where SIMD16<Float>
// code falls back to scalar calls and runs ~100x slower. Haswell
// (AVX2 + FMA) runs on any x86-64 of the last decade. MOLA_TARGET_CPU picks another
// (e.g. znver4); build such variants with their own --scratch-path.
let targetCPU = ProcessInfo.processInfo.environment["MOLA_TARGET_CPU"] ?? "haswell"
// The AVX-512 kernels have their own target, compiled for AVX-512 F/BW/DQ/VL and called
// only when the CPU reports those (MoLATensor's CPU.avx512): one binary runs everywhere and
// doubles its arithmetic rate on cores with full-width AVX-512.
#if arch(x86_64)
let fast: [SwiftSetting] = [.unsafeFlags(["-target-cpu", targetCPU])]
let avx512: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
#else
let fast: [SwiftSetting] = []
let avx512: [SwiftSetting] = []
#endif

let package = Package(
    name: "MoLA-Swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mola-prep", targets: ["mola-prep"]),
        .executable(name: "mola-train", targets: ["mola-train"]),
        .executable(name: "mola-pipeline", targets: ["mola-pipeline"]),
        .executable(name: "mola-bench", targets: ["mola-bench"]),
        .library(name: "MoLAData", targets: ["MoLAData"]),
        .library(name: "MoLATensor", targets: ["MoLATensor"]),
        .library(name: "MoLAModel", targets: ["MoLAModel"]),
        .library(name: "MoLATrain", targets: ["MoLATrain"]),
        .library(name: "MoLAReport", targets: ["MoLAReport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(
            name: "CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(
            name: "CTurboJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"]), .brew(["jpeg-turbo"])]),
        // SHA-256 only. The system's OpenSSL instead of swift-crypto: the same speed (both
        // use the CPU's SHA extensions) without compiling BoringSSL on every fresh clone.
        .systemLibrary(
            name: "CLibCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
        // What every layer shares and nothing else: seeded random streams, the parallel-for,
        // the error protocol, config values, atomic file writes, progress, hashing, version.
        .target(
            name: "MoLASupport",
            dependencies: ["Yams", "CLibCrypto"],
            swiftSettings: fast),
        .target(name: "MoLAKernelsAVX512", swiftSettings: avx512),
        .target(name: "MoLATensor", dependencies: ["MoLASupport", "MoLAKernelsAVX512"], swiftSettings: fast),
        .target(name: "MoLAData", dependencies: ["MoLASupport", "CZlib", "CPNG", "CTurboJPEG", "Yams"], swiftSettings: fast),
        .target(name: "MoLAModel", dependencies: ["MoLASupport", "MoLATensor"], swiftSettings: fast),
        // What a run records (metrics, report.json, compare.json) and how it is drawn: Markdown,
        // SVG plots, HTML pages, TensorBoard events. Knows nothing of models or methods.
        .target(name: "MoLAReport", dependencies: ["MoLASupport"], swiftSettings: fast),
        .target(name: "MoLATrain", dependencies: ["MoLASupport", "MoLAData", "MoLAModel", "MoLAReport", "MoLATensor"], swiftSettings: fast),
        .executableTarget(
            name: "mola-train",
            dependencies: ["MoLASupport", "MoLATrain", "MoLAData", "MoLAModel", "MoLAReport", "MoLATensor", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
        .target(name: "MoLAPipeline", dependencies: ["MoLASupport", "Yams"], swiftSettings: fast),
        .executableTarget(
            name: "mola-pipeline",
            dependencies: ["MoLAPipeline", "MoLASupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
        .executableTarget(
            name: "mola-prep",
            dependencies: ["MoLASupport", "MoLAData", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
        .executableTarget(
            name: "mola-bench",
            dependencies: ["MoLASupport", "MoLAData", "MoLATensor", "MoLAModel", "MoLATrain", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/Sources",
            swiftSettings: fast),
        // The mutation fuzzer over every reader (Fuzz/main.swift says how to run it).
        .executableTarget(name: "mola-fuzz", dependencies: ["MoLASupport", "MoLAData"], path: "Fuzz", swiftSettings: fast),
        .testTarget(name: "MoLASupportTests", dependencies: ["MoLASupport"], swiftSettings: fast),
        .testTarget(name: "MoLATensorTests", dependencies: ["MoLASupport", "MoLATensor"], swiftSettings: fast),
        .testTarget(name: "MoLAModelTests", dependencies: ["MoLASupport", "MoLAModel"], swiftSettings: fast),
        .testTarget(name: "MoLATrainTests", dependencies: ["MoLASupport", "MoLATrain", "MoLAData", "MoLAModel", "MoLAReport", "MoLATensor"], swiftSettings: fast),
        .testTarget(name: "MoLAPipelineTests", dependencies: ["MoLAPipeline", "MoLASupport", "MoLAData"], swiftSettings: fast),
        .testTarget(name: "MoLADataTests", dependencies: ["MoLASupport", "MoLAData", "CZlib"], swiftSettings: fast),
    ],
    swiftLanguageModes: [.v6]
)
