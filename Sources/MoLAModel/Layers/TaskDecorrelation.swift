import Foundation
import MoLATensor

/// The Task-wise Decorrelation loss of MoLA-Router, as the reference implements it: router
/// logits s (N×K) are projected by a trainable linear map (K → P), L2-normalised to z, and
/// a supervised contrastive loss pulls same-task samples together and the rest apart:
///
///   L = mean over ordered pairs (i, j), i ≠ j, task_i = task_j, of
///       −log( exp(z_i·z_j/τ) / Σ_{k≠i} exp(z_i·z_k/τ) ).
///
/// Computed in Float64 (N² similarities: trivial next to the network).
public final class TaskDecorrelation {
    public let weight: ParameterRef, bias: ParameterRef
    public let inputs: Int, projection: Int
    public var temperature: Double
    let store: ParameterStore

    public init(_ store: ParameterStore, name: String = "router.twd", inputs: Int, projection: Int = 32, temperature: Double = 1) {
        self.store = store
        self.inputs = inputs
        self.projection = projection
        self.temperature = temperature
        weight = store.add("\(name).weight", shape: [inputs, projection], .kaimingUniform(fanIn: inputs, a: Float(5).squareRoot()))
        bias = store.add("\(name).bias", shape: [projection], .uniform(bound: 1 / Float(inputs).squareRoot()))
    }

    /// The loss for logits s (N×K) and task ids; adds `scale`·dL/ds into `ds` and the
    /// projection's gradients into the store. Returns L (0 when no two samples share a task).
    public func lossAndBackward(logits s: UnsafePointer<Float>, tasks: [Int32], scale: Float, ds: UnsafeMutablePointer<Float>) -> Double {
        let n = tasks.count, p = projection, k = inputs
        guard n > 1 else { return 0 }
        let w = store.value(weight), b = store.value(bias)
        // u = s·W + b, z = u/|u|.
        var u = [Double](repeating: 0, count: n * p), z = u, norm = [Double](repeating: 0, count: n)
        for i in 0..<n {
            for c in 0..<p {
                var acc = Double(b[c])
                for q in 0..<k { acc += Double(s[i * k + q]) * Double(w[q * p + c]) }
                u[i * p + c] = acc
            }
            norm[i] = max(1e-12, (0..<p).reduce(0.0) { $0 + u[i * p + $1] * u[i * p + $1] }.squareRoot())
            for c in 0..<p { z[i * p + c] = u[i * p + c] / norm[i] }
        }
        var sim = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n where j != i {
            sim[i * n + j] = (0..<p).reduce(0.0) { $0 + z[i * p + $1] * z[j * p + $1] } / temperature
        } }
        let positives = (0..<n).map { i in (0..<n).filter { $0 != i && tasks[$0] == tasks[i] }.count }
        let pairs = positives.reduce(0, +)
        guard pairs > 0 else { return 0 }
        var loss = 0.0
        var dSim = [Double](repeating: 0, count: n * n)
        for i in 0..<n where positives[i] > 0 {
            let m = (0..<n).filter { $0 != i }.map { sim[i * n + $0] }.max()!
            let denom = (0..<n).filter { $0 != i }.reduce(0.0) { $0 + exp(sim[i * n + $1] - m) }
            let logDenom = m + log(denom)
            for j in 0..<n where j != i {
                let positive = tasks[j] == tasks[i]
                if positive { loss += logDenom - sim[i * n + j] }
                // d/dsim_ij: count_i·softmax_ij − [positive], over all pairs.
                dSim[i * n + j] = (Double(positives[i]) * exp(sim[i * n + j] - logDenom) - (positive ? 1 : 0)) / Double(pairs)
            }
        }
        loss /= Double(pairs)
        // Back through sim = z·zᵀ/τ, the normalisation and the projection.
        var dz = [Double](repeating: 0, count: n * p)
        for i in 0..<n { for j in 0..<n where j != i {
            let g = (dSim[i * n + j] + dSim[j * n + i]) / temperature
            if g != 0 { for c in 0..<p { dz[i * p + c] += g * z[j * p + c] } }
        } }
        let dw = store.gradient(weight), db = store.gradient(bias)
        let sc = Double(scale)
        for i in 0..<n {
            let dot = (0..<p).reduce(0.0) { $0 + z[i * p + $1] * dz[i * p + $1] }
            for c in 0..<p {
                let du = sc * (dz[i * p + c] - z[i * p + c] * dot) / norm[i]
                db[c] += Float(du)
                for q in 0..<k {
                    dw[q * p + c] += Float(Double(s[i * k + q]) * du)
                    ds[i * k + q] += Float(du * Double(w[q * p + c]))
                }
            }
        }
        return loss
    }
}
