import MoLASupport
import MoLATensor
import Testing

/// Products against a plain triple loop in Float64, on odd shapes that exercise every edge.
@Suite struct GEMMTests {
    static func naive(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double, _ a: [Float], _ lda: Int,
                      _ b: [Float], _ ldb: Int, _ beta: Double, _ c: [Float], _ ldc: Int) -> [Double] {
        var out = c.map(Double.init)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let x = Double(tA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(tB ? b[j * ldb + p] : b[p * ldb + j])
                    s += x * y
                }
                out[i * ldc + j] = alpha * s + beta * Double(c[i * ldc + j])
            }
        }
        return out
    }

    static let sizes = [1, 7, 33, 65, 257]

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matchesTheNaiveLoopOnOddShapes(transA: Bool, transB: Bool) {
        var g = RandomGenerator(seed: 1)
        for m in Self.sizes { for n in Self.sizes { for k in [1, 7, 65, 300] {
            if m * n * k > 2_000_000 { continue }
            let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2
            let a = (0..<((transA ? k : m) * lda)).map { _ in g.uniform(-1, 1) }
            let b = (0..<((transB ? n : k) * ldb)).map { _ in g.uniform(-1, 1) }
            let c0 = (0..<(m * ldc)).map { _ in g.uniform(-1, 1) }
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
                var c = c0
                GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: &c, ldc: ldc)
                let want = Self.naive(transA, transB, m, n, k, Double(alpha), a, lda, b, ldb, Double(beta), c0, ldc)
                var worst = 0.0
                for i in 0..<m { for j in 0..<n { worst = max(worst, abs(Double(c[i * ldc + j]) - want[i * ldc + j])) } }
                #expect(worst < 1e-4 * Double(k).squareRoot() * 4, "m \(m) n \(n) k \(k) alpha \(alpha) beta \(beta): error \(worst)")
                // Padding columns of C beyond n are untouched.
                for i in 0..<m { for j in n..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j]) } }
            }
        } } }
    }

    @Test func sameResultForAnyThreadCount() {
        var g = RandomGenerator(seed: 2)
        let (m, n, k) = (301, 67, 129)
        let a = (0..<(m * k)).map { _ in g.uniform(-1, 1) }, b = (0..<(k * n)).map { _ in g.uniform(-1, 1) }
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        GEMM.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c1, ldc: n, engine: Engine(threads: 1))
        GEMM.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c2, ldc: n, engine: Engine(threads: 2))
        #expect(c1 == c2)
    }
}
