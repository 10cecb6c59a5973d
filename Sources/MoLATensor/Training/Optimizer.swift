import Foundation
import MoLASupport

/// Updates a store's trainable values from its gradients.
public protocol Optimizer {
    mutating func step(_ store: ParameterStore, learningRate: Float)
    /// Everything needed to resume exactly (named arrays of the store's size).
    var state: [String: [Float]] { get }
    mutating func restore(_ state: [String: [Float]]) throws
}

public struct OptimizerStateError: MoLAError {
    public var description: String
}

/// SGD with momentum and coupled (L2) weight decay, as `torch.optim.SGD`:
/// g = ∇ + wd·θ (decaying entries only); v = μ·v + g; θ −= lr·v.
public struct SGD: Optimizer {
    public var momentum: Float
    public var weightDecay: Float
    var velocity: [Float] = []

    public init(momentum: Float = 0.9, weightDecay: Float = 0) {
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public mutating func step(_ store: ParameterStore, learningRate lr: Float) {
        if velocity.count != store.count { velocity = [Float](repeating: 0, count: store.count) }
        let (mu, wd) = (momentum, weightDecay)
        velocity.withUnsafeMutableBufferPointer { vb in
            let v = vb.baseAddress!
            for e in store.entries where e.trainable {
                let p = store.values + e.offset, g = store.gradients + e.offset, ve = v + e.offset
                let decay = e.decay ? wd : 0
                for i in 0..<e.count {
                    let grad = g[i] + decay * p[i]
                    ve[i] = mu * ve[i] + grad
                    p[i] -= lr * ve[i]
                }
            }
        }
    }

    public var state: [String: [Float]] { ["velocity": velocity] }

    public mutating func restore(_ state: [String: [Float]]) throws {
        guard let v = state["velocity"] else { throw OptimizerStateError(description: "SGD state lacks 'velocity'") }
        velocity = v
    }
}

/// AdamW (decoupled weight decay, as `torch.optim.AdamW`):
/// θ −= lr·wd·θ; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// θ −= lr·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.
public struct AdamW: Optimizer {
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    var m: [Float] = [], v: [Float] = []
    var t = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }

    public mutating func step(_ store: ParameterStore, learningRate lr: Float) {
        if m.count != store.count { m = [Float](repeating: 0, count: store.count); v = m }
        t += 1
        let c1 = 1 - Float(Foundation.pow(Double(beta1), Double(t))), c2 = 1 - Float(Foundation.pow(Double(beta2), Double(t)))
        let (b1, b2, eps, wd) = (beta1, beta2, epsilon, weightDecay)
        m.withUnsafeMutableBufferPointer { mb in v.withUnsafeMutableBufferPointer { vb in
            for e in store.entries where e.trainable {
                let p = store.values + e.offset, g = store.gradients + e.offset
                let me = mb.baseAddress! + e.offset, ve = vb.baseAddress! + e.offset
                let decay = e.decay ? wd : 0
                for i in 0..<e.count {
                    p[i] -= lr * decay * p[i]
                    me[i] = b1 * me[i] + (1 - b1) * g[i]
                    ve[i] = b2 * ve[i] + (1 - b2) * g[i] * g[i]
                    p[i] -= lr * (me[i] / c1) / ((ve[i] / c2).squareRoot() + eps)
                }
            }
        } }
    }

    public var state: [String: [Float]] { ["m": m, "v": v, "t": [Float(t)]] }

    public mutating func restore(_ state: [String: [Float]]) throws {
        guard let m = state["m"], let v = state["v"], let t = state["t"]?.first else {
            throw OptimizerStateError(description: "AdamW state lacks 'm', 'v' or 't'")
        }
        self.m = m; self.v = v; self.t = Int(t)
    }
}

/// The learning rate at each step.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable { case constant, cosine, step }
    public var kind: Kind
    /// Total steps (cosine) — the rate reaches `minimum` at the last.
    public var totalSteps: Int
    /// Linear warm-up from 0 over this many steps.
    public var warmupSteps: Int
    /// For `step`: multiply by `gamma` every `every` steps.
    public var every: Int
    public var gamma: Float
    /// For `cosine`: the final rate as a fraction of the base rate.
    public var minimum: Float

    public static func cosine(totalSteps: Int, warmupSteps: Int = 0, minimum: Float = 0) -> Self {
        .init(kind: .cosine, totalSteps: totalSteps, warmupSteps: warmupSteps, every: 0, gamma: 1, minimum: minimum)
    }
    public static func step(every: Int, gamma: Float, warmupSteps: Int = 0) -> Self {
        .init(kind: .step, totalSteps: 0, warmupSteps: warmupSteps, every: every, gamma: gamma, minimum: 0)
    }
    public static let constant = LearningRateSchedule(kind: .constant, totalSteps: 0, warmupSteps: 0, every: 0, gamma: 1, minimum: 0)

    /// The rate for step `t` (0-based) given the base rate.
    public func rate(base: Float, step t: Int) -> Float {
        if warmupSteps > 0 && t < warmupSteps { return base * Float(t + 1) / Float(warmupSteps) }
        switch kind {
        case .constant: return base
        case .step: return base * Float(Foundation.pow(Double(gamma), Double((t - warmupSteps) / max(1, every))))
        case .cosine:
            let span = max(1, totalSteps - warmupSteps - 1)
            let progress = min(1, Double(t - warmupSteps) / Double(span))
            let floor = Double(base * minimum)
            return Float(floor + (Double(base) - floor) * 0.5 * (1 + Foundation.cos(Double.pi * progress)))
        }
    }
}
