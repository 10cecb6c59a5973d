import Foundation

/// What the processor offers beyond the build's baseline (AVX2 + FMA, see Package.swift).
public enum CPU {
    /// Whether the AVX-512 kernels can run: the CPU has AVX-512 F/BW/DQ/VL (what the
    /// `MoLAKernelsAVX512` target is compiled for) and `MOLA_AVX512=0` is not set.
    public static let hasAVX512: Bool = {
        #if arch(x86_64) && os(Linux)
        if ProcessInfo.processInfo.environment["MOLA_AVX512"] == "0" { return false }
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()
}
