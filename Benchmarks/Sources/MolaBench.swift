import ArgumentParser
import Foundation
import MoLASupport
import MoLATensor

@main
struct MolaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mola-bench",
        abstract: "Side-by-side speed measurements of MoLA-Swift and a reference, in one run.",
        discussion: """
            Each measurement prints one JSON object per line: ours and the reference's, \
            best of several interleaved runs. Build release: swift run -c release mola-bench …
            """,
        subcommands: [IngestBench.self, GEMMBench.self, TrainStepBench.self, ConvLayersBench.self, HashBench.self])
}

/// Options every benchmark shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("repeat"), help: "Runs per measurement; the best is reported.")
    var runs: Int = 3

    @Option(help: "Folder for generated inputs and outputs (git-ignored).")
    var work: String = "Benchmarks/out"

    func apply() {
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }
}

/// Prints one measurement as a JSON line (keys sorted, so lines diff well).
func report(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)  // all streams: `stdout` is a C global Swift 6 will not touch
}

/// The best wall time of `runs` calls of `body` (after `setup` each time, untimed).
func bestTime(runs: Int, setup: () throws -> Void = {}, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<max(1, runs) {
        try setup()
        let t = DispatchTime.now().uptimeNanoseconds
        try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
    }
    return best
}

/// Runs a reference script and returns the lines it prints (JSON objects); none, with the
/// reason on standard error, when python3 or a package it needs is missing.
func pythonLines(_ script: String, _ args: [String], environment: [String: String] = [:]) -> [String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script] + args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { return [] }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: o, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
}

/// Runs a reference script with python3 and returns its JSON object, or nil (with the reason
/// on standard error) when python3 or a package it needs is missing.
func pythonReference(_ script: String, _ args: [String]) -> [String: Any]? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    do { try p.run() } catch { return nil }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0,
          let line = String(decoding: o, as: UTF8.self).split(separator: "\n").last,
          let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else {
        FileHandle.standardError.write(Data("reference \(script) failed: \(String(decoding: e, as: UTF8.self))\n".utf8))
        return nil
    }
    return obj
}

/// The folder of this package (benchmarks find their reference scripts there).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()
