import Foundation

/// The processor a run or benchmark ran on, as reports and results pages state it: the
/// model name, its family and model numbers, the vector extensions the engine uses and the
/// core count — e.g. `AMD EPYC (family 25, model 1), AVX2+FMA, 2 cores`.
public enum Machine {
    public static let description: String = {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #if os(Linux)
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            return describe(cpuinfo: info, cores: cores)
        }
        #endif
        return "\(cores) cores"
    }()

    /// The description from the text of `/proc/cpuinfo` (its first processor's fields).
    public static func describe(cpuinfo: String, cores: Int) -> String {
        var fields: [String: String] = [:]
        for line in cpuinfo.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        var text = fields["model name"] ?? "unknown CPU"
        if let family = fields["cpu family"], let model = fields["model"] { text += " (family \(family), model \(model))" }
        let flags = Set((fields["flags"] ?? "").split(separator: " ").map(String.init))
        var vector: [String] = []
        if flags.contains("avx2") { vector.append(flags.contains("fma") ? "AVX2+FMA" : "AVX2") }
        if flags.contains("avx512f") { vector.append("AVX-512") } else if flags.contains("avx2") { vector.append("no AVX-512") }
        if !vector.isEmpty { text += ", " + vector.joined(separator: ", ") }
        return text + ", \(cores) cores"
    }
}
