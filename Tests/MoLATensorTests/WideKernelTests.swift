import MoLASupport
import MoLATensor
import Testing

/// The AVX-512 kernel must give the AVX2 kernel's results bit for bit: training results
/// must not depend on which of them the CPU runs.
@Suite struct WideKernelTests {
    /// (On a CPU without AVX-512 only the AVX2 kernel exists: nothing to compare.)
    @Test(.enabled(if: CPU.hasAVX512, "the CPU has AVX-512"), arguments: [(false, false), (true, false), (false, true), (true, true)])
    func bothKernelFormsAgreeBitForBit(transA: Bool, transB: Bool) throws {
        var g = RandomGenerator(seed: 3)
        // Every tile form: n = 100 is a group of four panels, a pair and a ragged panel; n = 48
        // a pair and a single panel, taken ten rows at a time.
        for (m, n, k) in [(37, 100, 53), (5, 64, 1), (123, 130, 300), (12, 16, 9), (41, 48, 20)] {
            let lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 3, ldc = n + 1
            let a = (0..<((transA ? k : m) * lda)).map { _ in g.uniform(-1, 1) }
            let b = (0..<((transB ? n : k) * ldb)).map { _ in g.uniform(-1, 1) }
            let c0 = (0..<(m * ldc)).map { _ in g.uniform(-1, 1) }
            func product(wide: Bool) -> [Float] {
                var c = c0
                GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb,
                           beta: 0.5, c: &c, ldc: ldc, engine: Engine(threads: 2, wideKernels: wide))
                return c
            }
            #expect(product(wide: true) == product(wide: false), "m \(m) n \(n) k \(k)")
        }
    }
}
