import Foundation
import MoLASupport

extension Balancer {
    public static let dbMTL = Balancer(name: "db-mtl", summary: "log-loss gradients, running averages, equal norms (Lin 2023)",
                                       kind: .combinesGradients { _ in DBMTL() },
                                       notOnRepresentation: "its direction is made of running averages of past steps' gradients, not a weighting of this step's task rows")
}

/// DB-MTL, dual-balancing (Lin et al. 2023; LibMTL's `DB_MTL`, β = 0.9, σ = 0): each task's
/// gradient of log(ℓ_t + 1e-8), which is g_t/(ℓ_t + 1e-8), kept as a running average
/// b_t ← g'_t + β/k^σ·(b_t − g'_t) (k the step, from 1); the averages scaled to the largest
/// one's norm (α_t = max_s |b_s| / (|b_t| + 1e-8)) and summed.
public final class DBMTL: GradientCombiner, @unchecked Sendable {
    public var beta = 0.9, betaSigma = 0.0
    var buffers = TaskBuffers(), steps = 0

    public init() {}

    public var state: [String: [Double]] {
        get { var s = buffers.state; s["steps"] = [Double(steps)]; return s }
        set { buffers.state = newValue; steps = Int(newValue["steps"]?.first ?? 0) }
    }

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        combine(grads, rows: TaskRows(count: grads.count), rng: &rng)
    }

    public func combine(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Float] {
        let (tasks, losses) = (rows.tasks, rows.losses)
        steps += 1
        let width = grads.first?.count ?? 0, decay = beta / pow(Double(steps), betaSigma)
        var averaged: [[Double]] = []
        for (i, t) in tasks.enumerated() {
            let scale = 1 / (losses[i] + 1e-8)
            let b = buffers.row(t, width: width)
            buffers.rows[t] = (0..<width).map { k in let g = Double(grads[i][k]) * scale; return g + decay * (b[k] - g) }
            averaged.append(buffers.rows[t])
        }
        let norms = averaged.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }, top = norms.max() ?? 0
        return (0..<width).map { k in Float(averaged.indices.reduce(0.0) { $0 + top / (norms[$1] + 1e-8) * averaged[$1][k] }) }
    }
}
