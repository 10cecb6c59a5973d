import Foundation
import MoLAModel
import MoLASupport
import MoLATensor
import Testing

/// The TwD loss against a plain Float64 transcription of its formula, and its gradients
/// (logits, projection) against central finite differences of that transcription.
@Suite struct TaskDecorrelationTests {
    static func reference(s: [Double], w: [Double], b: [Double], tasks: [Int32], k: Int, p: Int, tau: Double) -> Double {
        let n = tasks.count
        let z: [[Double]] = (0..<n).map { i in
            let u = (0..<p).map { c in b[c] + (0..<k).reduce(0.0) { $0 + s[i * k + $1] * w[$1 * p + c] } }
            let norm = u.map { $0 * $0 }.reduce(0, +).squareRoot()
            return u.map { $0 / norm }
        }
        func sim(_ i: Int, _ j: Int) -> Double { zip(z[i], z[j]).map(*).reduce(0, +) / tau }
        var total = 0.0, pairs = 0
        for i in 0..<n { for j in 0..<n where j != i && tasks[j] == tasks[i] {
            let denom = (0..<n).filter { $0 != i }.map { exp(sim(i, $0)) }.reduce(0, +)
            total += -log(exp(sim(i, j)) / denom)
            pairs += 1
        } }
        return pairs == 0 ? 0 : total / Double(pairs)
    }

    @Test(arguments: [1.0, 0.5])
    func lossAndGradientsMatchTheFormula(temperature: Double) {
        let (k, p) = (3, 5)
        let tasks: [Int32] = [0, 1, 0, 2, 1, 0, 2]
        let n = tasks.count
        let store = ParameterStore()
        let twd = TaskDecorrelation(store, inputs: k, projection: p, temperature: temperature)
        store.allocate(seed: 2)
        var g = RandomGenerator(seed: 3)
        let s = (0..<(n * k)).map { _ in g.uniform(-2, 2) }
        let w = Array(UnsafeBufferPointer(start: store.value(twd.weight), count: k * p))
        let b = Array(UnsafeBufferPointer(start: store.value(twd.bias), count: p))
        var ds = [Float](repeating: 0, count: n * k)
        let loss = twd.lossAndBackward(logits: s, tasks: tasks, scale: 1, ds: &ds)
        let f = { (v: [[Double]]) in Self.reference(s: v[0], w: v[1], b: v[2], tasks: tasks, k: k, p: p, tau: temperature) }
        #expect(abs(loss - f([s, w, b].map { $0.map(Double.init) })) < 1e-6)
        // Scalar loss: check with dy = [1], on all inputs.
        let check = ModelGradCheck()
        check.check(inputs: [s, w, b], analytic: [ds, Array(UnsafeBufferPointer(start: store.gradient(twd.weight), count: k * p)),
                                                  Array(UnsafeBufferPointer(start: store.gradient(twd.bias), count: p))], reference: f)
    }

    @Test func noSharedTaskMeansNoLoss() {
        let store = ParameterStore()
        let twd = TaskDecorrelation(store, inputs: 2)
        store.allocate(seed: 1)
        var ds = [Float](repeating: 0, count: 4)
        #expect(twd.lossAndBackward(logits: [1, 2, 3, 4], tasks: [0, 1], scale: 1, ds: &ds) == 0)
        #expect(ds == [0, 0, 0, 0])
    }
}

/// Central differences of a scalar Float64 function, compared entry by entry.
struct ModelGradCheck {
    func check(inputs: [[Float]], analytic: [[Float]], reference: ([[Double]]) -> Double, step: Double = 1e-5,
               sourceLocation: SourceLocation = #_sourceLocation) {
        var x = inputs.map { $0.map(Double.init) }
        for t in inputs.indices {
            for i in inputs[t].indices {
                let keep = x[t][i]
                x[t][i] = keep + step; let up = reference(x)
                x[t][i] = keep - step; let down = reference(x)
                x[t][i] = keep
                let numeric = (up - down) / (2 * step)
                let err = abs(numeric - Double(analytic[t][i])) / max(1e-3, abs(numeric))
                #expect(err < 1e-3, "input \(t)[\(i)]: analytic \(analytic[t][i]), numeric \(numeric)", sourceLocation: sourceLocation)
            }
        }
    }
}
