import ArgumentParser
import Foundation
import MoLASupport

/// SHA-256 throughput of `Hash` (what shards, checkpoints and pipelines are checked with)
/// next to Python's hashlib, on the same bytes, in rounds that alternate the two.
struct HashBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hash", abstract: "SHA-256 MB/s vs Python's hashlib.")

    @Option(help: "Megabytes hashed per measurement.")
    var megabytes: Int = 256

    @Option(help: "Rounds alternating ours and hashlib (best kept).")
    var rounds: Int = 3

    func run() throws {
        var g = RandomGenerator(seed: 5)
        let bytes = (0..<(megabytes << 20)).map { _ in UInt8(truncatingIfNeeded: g.nextInt(below: 256)) }
        let script = """
            import hashlib, json, os, sys, time
            b = os.urandom(int(sys.argv[1]) << 20)
            best = float("inf")
            for _ in range(2):
                t = time.perf_counter()
                hashlib.sha256(b).hexdigest()
                best = min(best, time.perf_counter() - t)
            print(json.dumps({"mb_per_s": round(len(b) / best / 1e6, 1)}))
            """
        var ours = 0.0, theirs = 0.0
        for _ in 0..<max(1, rounds) {
            let t = try bytes.withUnsafeBytes { b in try bestTime(runs: 2) { _ = Hash.sha256Hex(b) } }
            ours = max(ours, Double(bytes.count) / t / 1e6)
            let p = Process(), out = Pipe()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", script, "\(megabytes)"]
            p.standardOutput = out
            try p.run()
            let line = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            if let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let v = o["mb_per_s"] as? Double { theirs = max(theirs, v) }
        }
        report(["bench": "sha256", "megabytes": megabytes, "ours_mb_per_s": (ours * 10).rounded() / 10,
                "hashlib_mb_per_s": theirs, "library": "libcrypto (OpenSSL) through Hash"])
    }
}
