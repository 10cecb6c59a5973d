import ArgumentParser
import Foundation
import MoLASupport
import MoLATensor

/// GFLOP/s of our SGEMM next to numpy's float32 matmul (OpenBLAS), same shapes, same run:
/// rounds alternate ours and numpy, and the best of all rounds is kept for each, so a
/// machine whose speed drifts during the run does not favour either side.
struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "SGEMM GFLOP/s vs numpy/OpenBLAS, 1 and 2 threads.")

    @Option(help: "Timed runs per measurement within a round.")
    var `repeat`: Int = 3

    @Option(help: "Rounds alternating ours and numpy.")
    var rounds: Int = 5

    @Option(help: "Thread counts to measure, comma-separated.")
    var threads: String = "1,2"

    @Flag(help: "Skip the numpy reference.")
    var noReference = false

    /// (m, n, k, transA, transB, what)
    static let shapes: [(Int, Int, Int, Bool, Bool, String)] = [
        (256, 256, 256, false, false, "square"),
        (512, 512, 512, false, false, "square"),
        (1024, 1024, 1024, false, false, "square"),
        (25088, 16, 144, false, false, "conv 3x3 16->16 forward, 14x14, batch 128"),
        (1568, 64, 576, false, false, "conv 3x3 64->64 forward, 7x7, batch 32"),
        (100352, 16, 144, false, false, "resnet-mini block 1 conv forward (28x28, batch 128)"),
        (6272, 64, 576, false, false, "resnet-mini block 3 conv forward (7x7, batch 128)"),
        (144, 16, 25088, true, false, "conv weight gradient dW = Xcol^T dY"),
        (25088, 144, 16, false, true, "conv input gradient dXcol = dY W^T"),
    ]

    func ours(_ shape: (Int, Int, Int, Bool, Bool, String), threads t: Int) throws -> Double {
        let (m, n, k, ta, tb, _) = shape
        var g = RandomGenerator(seed: 1)
        let a = (0..<(m * k)).map { _ in g.uniform(-1, 1) }, b = (0..<(k * n)).map { _ in g.uniform(-1, 1) }
        var c = [Float](repeating: 0, count: m * n)
        let flops = 2.0 * Double(m * n * k)
        let reps = max(1, Int(2e8 / flops))
        let seconds = try a.withUnsafeBufferPointer { ap in try b.withUnsafeBufferPointer { bp in try c.withUnsafeMutableBufferPointer { cp in
            // One untimed call first: worker threads awake, scratch buffers grown.
            GEMM.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: ap.baseAddress!, lda: ta ? m : k,
                       b: bp.baseAddress!, ldb: tb ? k : n, c: cp.baseAddress!, ldc: n, engine: Engine(threads: t))
            return try bestTime(runs: `repeat`) {
                for _ in 0..<reps {
                    GEMM.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: ap.baseAddress!, lda: ta ? m : k,
                               b: bp.baseAddress!, ldb: tb ? k : n, c: cp.baseAddress!, ldc: n, engine: Engine(threads: t))
                }
            } / Double(reps)
        } } }
        return flops / seconds / 1e9
    }

    func numpy(threads t: Int) -> [Double] {
        let spec = Self.shapes.map { "\($0.0),\($0.1),\($0.2),\($0.3 ? 1 : 0),\($0.4 ? 1 : 0)" }.joined(separator: ";")
        let lines = pythonLines(packageRoot + "/Benchmarks/reference/gemm_reference.py",
                                ["--shapes", spec, "--repeat", "\(`repeat`)"], environment: ["OPENBLAS_NUM_THREADS": "\(t)"])
        return lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["gflops"] as? Double
        }
    }

    func run() throws {
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            var best = [Double](repeating: 0, count: Self.shapes.count)
            var ref = [Double](repeating: 0, count: Self.shapes.count)
            for _ in 0..<max(1, rounds) {
                for (i, shape) in Self.shapes.enumerated() { best[i] = max(best[i], try ours(shape, threads: t)) }
                if !noReference {
                    let r = numpy(threads: t)
                    if r.count == ref.count { for i in ref.indices { ref[i] = max(ref[i], r[i]) } }
                }
            }
            for (i, (m, n, k, ta, tb, what)) in Self.shapes.enumerated() {
                var fields: [String: Any] = ["m": m, "n": n, "k": k, "trans_a": ta, "trans_b": tb, "threads": t, "what": what,
                                             "mola_swift_gflops": (best[i] * 10).rounded() / 10]
                if ref[i] > 0 {
                    fields["numpy_openblas_gflops"] = (ref[i] * 10).rounded() / 10
                    fields["ratio"] = (best[i] / ref[i] * 100).rounded() / 100
                }
                report(fields)
            }
        }
    }
}
