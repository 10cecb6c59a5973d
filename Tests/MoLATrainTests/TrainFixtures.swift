import Foundation
import MoLAData
import MoLAReport
import MoLATrain
import Testing

/// A temporary folder removed when the value goes away.
final class TempDir {
    let path: String
    init(_ label: String = "mola-train") {
        path = NSTemporaryDirectory() + "/\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}

/// A tiny real dataset shared by the tests: MNIST-5k and optdigits as two tasks at 12×12
/// (the pip packages' files, as the shipped manifests use them; Fixtures/tiny-digits.yaml),
/// ingested once.
enum TinyData {
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "/mola-train-tiny-\(getpid())"
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures/tiny-digits.yaml"
        let manifest = try! String(contentsOfFile: fixture, encoding: .utf8)
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/tiny.yaml"
        try! manifest.write(toFile: path, atomically: true, encoding: .utf8)
        _ = try! Ingest(manifest: try! Manifest(path: path), options: .init(output: dir + "/data", progress: false)).run()
        return dir + "/data"
    }()

    /// A config for `method` on the tiny data (or on `dataset`), trained for `steps` steps.
    static func config(_ tmp: TempDir, method: String, steps: Int = 12, evalEvery: Int = 4, extra: String = "", output: String? = nil,
                       dataset: String = directory, epochs: Int = 1000) -> String {
        let out = output ?? "runs/" + method
        return tmp.write("\(output ?? method).yaml", """
            name: tiny-\(method)
            data: {dataset: \(dataset)}
            method: \(method)
            backbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 16], blocks: [1, 1, 1]}
            adapters: {rank: 2, alpha: 4}
            router: {widths: [4, 8], blocks: [1, 1]}
            epochs: \(epochs)
            max_steps: \(steps)
            eval_every: \(evalEvery)
            batch_size: 32
            seed: 3
            threads: 2
            output: \(tmp.path)/\(out)
            \(extra)
            """)
    }

    static func train(_ configFile: String, resume: Bool = false, fresh: Bool = true, stopAfter: Int? = nil) throws -> (Trainer.Outcome, String) {
        var r = TrainingRun(configFile: configFile)
        r.progress = false
        r.resume = resume
        r.fresh = fresh && !resume
        r.stopAfterSteps = stopAfter
        r.log = { _ in }
        return try r.run()
    }
}

struct CommandResult { var status: Int32; var stdout: String; var stderr: String }

/// The answer of a Python peer (scikit-learn, numpy): `script` reads the JSON of `cases`
/// from the path in `sys.argv[1]` and prints its answer as JSON.
func askPython<Answer: Decodable>(_ script: String, cases: some Encodable, as: Answer.Type) throws -> Answer {
    let dir = NSTemporaryDirectory() + "/mola-peer-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try JSONEncoder().encode(cases).write(to: URL(fileURLWithPath: dir + "/cases.json"))
    try script.write(toFile: dir + "/peer.py", atomically: true, encoding: .utf8)
    let r = try run("python3", [dir + "/peer.py", dir + "/cases.json"])
    try #require(r.status == 0, "the Python peer failed (scripts/setup-tests.sh installs it): \(r.stderr)")
    return try JSONDecoder().decode(Answer.self, from: Data(r.stdout.utf8))
}

@discardableResult
func run(_ program: String, _ args: [String]) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [program] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

func metricsLines(_ dir: String) -> [[String: Any]] {
    let text = (try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }
