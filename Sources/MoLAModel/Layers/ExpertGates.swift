import Foundation
import MoLATensor

/// A task's gate over experts: rows of (pooled) inputs → rows of expert weights summing to 1.
protocol ExpertGate {
    var experts: Int { get }
    /// x: rows × inputs. Returns rows × experts.
    func forward(_ x: Tensor) -> [Float]
    /// dWeights: rows × experts, for the last forward. Accumulates the parameter gradients.
    func backward(_ dWeights: [Float])
}

/// MMoE's and CGC's gate: softmax of a linear map.
final class SoftmaxGate: ExpertGate {
    let linear: LinearLayer
    let experts: Int
    private var weights: [Float] = []

    init(_ store: ParameterStore, name: String, inputs: Int, experts: Int) {
        linear = LinearLayer(store, name: name, inputs: inputs, outputs: experts)
        self.experts = experts
    }

    func forward(_ x: Tensor) -> [Float] {
        let rows = x.count / linear.inputs
        let logits = linear.forward(x)
        weights = [Float](repeating: 0, count: rows * experts)
        Softmax.forward(rows: rows, classes: experts, x: logits.pointer, y: &weights)
        return weights
    }

    func backward(_ dWeights: [Float]) { _ = backwardToInput(dWeights) }

    /// The same, returning the gradient of the gate's input (rows × inputs): PLE's gates
    /// read feature maps that earlier levels compute.
    func backwardToInput(_ dWeights: [Float]) -> Tensor {
        let rows = weights.count / experts
        var dLogits = Tensor(uninitialized: [rows, experts])
        weights.withUnsafeBufferPointer { Softmax.backward(rows: rows, classes: experts, y: $0.baseAddress!, dy: dWeights, dx: dLogits.mutablePointer()) }
        return linear.backward(dLogits)
    }
}

/// DSelect-k (Hazimeh et al., NeurIPS 2021), per-example: k selectors, each picking one of
/// E = 2^m experts through m "bits" z made continuous by the smooth step S (0 below −γ/2,
/// 1 above γ/2, a cubic between): selector i gives expert l the weight
/// r_il = Π_j (bit j of l ? S(z_ij) : 1 − S(z_ij)), which sums to 1 over l and is one-hot
/// once its z leave [−γ/2, γ/2]; the gate is Σ_i softmax(α)_i r_i, so at most k experts
/// carry weight. z and α are linear in the input. (The paper's entropy regulariser, which
/// pushes z out of the cubic sooner, is not applied.)
public final class DSelectGate: ExpertGate {
    public let experts: Int, k: Int, bits: Int, inputs: Int
    public let gamma: Float
    public let linear: LinearLayer  // outputs: k·m selector bits, then k selector logits
    private var z: [Float] = [], selectorWeights: [Float] = [], r: [Float] = []
    private var rows = 0

    public init(_ store: ParameterStore, name: String, inputs: Int, experts: Int, k: Int, gamma: Float) {
        precondition(experts >= 2 && experts & (experts - 1) == 0, "DSelect-k needs a power-of-two expert count")
        self.experts = experts
        self.k = k
        self.gamma = gamma
        self.inputs = inputs
        bits = experts.trailingZeroBitCount
        linear = LinearLayer(store, name: name, inputs: inputs, outputs: k * bits + k)
    }

    func smoothStep(_ t: Float) -> Float {
        if t <= -gamma / 2 { return 0 }
        if t >= gamma / 2 { return 1 }
        return -2 / (gamma * gamma * gamma) * t * t * t + 3 / (2 * gamma) * t + 0.5
    }
    func smoothStepDerivative(_ t: Float) -> Float {
        abs(t) >= gamma / 2 ? 0 : -6 / (gamma * gamma * gamma) * t * t + 3 / (2 * gamma)
    }

    /// Selector i's weight on expert l, with bit `skip` left out of the product (nil: none).
    private func product(_ row: Int, _ i: Int, _ l: Int, skip: Int? = nil) -> Float {
        var p: Float = 1
        for j in 0..<bits where j != skip {
            let s = smoothStep(z[(row * k + i) * bits + j])
            p *= (l >> j) & 1 == 1 ? s : 1 - s
        }
        return p
    }

    public func forward(_ x: Tensor) -> [Float] {
        rows = x.count / inputs
        let out = linear.forward(x), width = k * bits + k, o = out.pointer
        z = [Float](repeating: 0, count: rows * k * bits)
        var alpha = [Float](repeating: 0, count: rows * k)
        for row in 0..<rows {
            for i in 0..<(k * bits) { z[row * k * bits + i] = o[row * width + i] }
            for i in 0..<k { alpha[row * k + i] = o[row * width + k * bits + i] }
        }
        selectorWeights = [Float](repeating: 0, count: rows * k)
        Softmax.forward(rows: rows, classes: k, x: alpha, y: &selectorWeights)
        r = [Float](repeating: 0, count: rows * k * experts)
        var w = [Float](repeating: 0, count: rows * experts)
        for row in 0..<rows { for i in 0..<k { for l in 0..<experts {
            let p = product(row, i, l)
            r[(row * k + i) * experts + l] = p
            w[row * experts + l] += selectorWeights[row * k + i] * p
        } } }
        return w
    }

    public func backward(_ dWeights: [Float]) {
        let width = k * bits + k
        var dOut = Tensor(zeros: [rows, width])
        let d = dOut.mutablePointer()
        var dSelector = [Float](repeating: 0, count: rows * k)
        for row in 0..<rows {
            for i in 0..<k {
                let a = selectorWeights[row * k + i]
                for l in 0..<experts { dSelector[row * k + i] += dWeights[row * experts + l] * r[(row * k + i) * experts + l] }
                for j in 0..<bits {
                    let zij = z[(row * k + i) * bits + j]
                    let slope = smoothStepDerivative(zij)
                    guard slope != 0 else { continue }
                    var ds: Float = 0
                    for l in 0..<experts {
                        let sign: Float = (l >> j) & 1 == 1 ? 1 : -1
                        ds += a * dWeights[row * experts + l] * sign * product(row, i, l, skip: j)
                    }
                    d[row * width + i * bits + j] = ds * slope
                }
            }
        }
        var dAlpha = [Float](repeating: 0, count: rows * k)
        Softmax.backward(rows: rows, classes: k, y: selectorWeights, dy: dSelector, dx: &dAlpha)
        for row in 0..<rows { for i in 0..<k { d[row * width + k * bits + i] = dAlpha[row * k + i] } }
        _ = linear.backward(dOut)
    }

    /// Per row, how many experts carry weight (> 1e-6): at most k once the selectors settle.
    public static func activeExperts(_ w: [Float], experts: Int) -> [Int] {
        stride(from: 0, to: w.count, by: experts).map { s in w[s..<(s + experts)].filter { $0 > 1e-6 }.count }
    }
}

/// Per image, its task gate's weights spread over every expert: the shared ones, then each
/// task's own in task order (zero for other tasks' experts). Batch × experts. `weights`:
/// per group of the layout, rows × (shared + perTask) of its gate.
func expertWeightsPerImage(layout: BatchLayout, weights: [[Float]], shared: Int, perTask: Int, tasks: Int) -> Tensor {
    let total = shared + tasks * perTask, e = shared + perTask
    var out = Tensor(zeros: [layout.count, total])
    let o = out.mutablePointer()
    for (gi, g) in layout.groups.enumerated() where gi < weights.count {
        for (row, i) in g.range.enumerated() {
            for ex in 0..<e { o[i * total + (ex < shared ? ex : shared + g.task * perTask + ex - shared)] = weights[gi][row * e + ex] }
        }
    }
    return out
}
