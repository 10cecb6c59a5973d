import Foundation
import MoLASupport

extension Balancer {
    public static let stch = Balancer(name: "stch", summary: "smooth Tchebycheff of the log-losses after warm-up (Lin 2024)",
                                      kind: .weightsLosses { SmoothTchebycheff(tasks: $0.tasks, stepsPerEpoch: $0.stepsPerEpoch) })
}

/// STCH, smooth Tchebycheff scalarisation (Lin et al., ICML 2024; LibMTL's `STCH`, μ = 1,
/// 4 warm-up epochs): for the first 4 epochs the objective Σ_t log ℓ_t (factor 1/ℓ_t),
/// while the 5th's losses are averaged into the nadir point n; then
/// T·μ·log Σ_t exp(log(ℓ_t/n_t)/μ), whose factor on ℓ_t is T·softmax(log(ℓ/n)/μ)_t / ℓ_t —
/// the worst task relative to its nadir leads. Epochs are the run's.
public struct SmoothTchebycheff: LossWeighting, Equatable {
    let stepsPerEpoch: Int
    public var mu = 1.0, warmupEpochs = 4
    var sums: [Double], count = 0.0
    var nadir: [Double]?

    public init(tasks: Int, stepsPerEpoch: Int) {
        self.stepsPerEpoch = max(1, stepsPerEpoch)
        sums = Array(repeating: 0, count: tasks)
    }

    public var taskWeights: [Double]? { nil }

    public var state: [String: [Double]] {
        get { var s = ["sums": sums, "count": [count]]; s["nadir"] = nadir; return s }
        set { sums = newValue["sums"] ?? sums; count = newValue["count"]?.first ?? 0; nadir = newValue["nadir"] }
    }

    public mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double] {
        let epoch = step / stepsPerEpoch
        if epoch <= warmupEpochs {
            if epoch == warmupEpochs, losses.allSatisfy({ $0 != nil }) {
                for (t, l) in losses.enumerated() { sums[t] += l! }
                count += 1
            }
            return losses.map { l in l.map { 1 / ($0 + 1e-20) } ?? 0 }
        }
        if nadir == nil { nadir = sums.map { count > 0 ? $0 / count : 1 } }
        let present = losses.indices.filter { losses[$0] != nil }
        let z = present.map { log(losses[$0]! / nadir![$0] + 1e-20) / mu }
        let s = softmax(z)
        var w = [Double](repeating: 0, count: losses.count)
        for (k, t) in present.enumerated() {
            // d/dℓ of log(ℓ/n + 1e-20) is 1/(ℓ + 1e-20·n).
            w[t] = Double(losses.count) * s[k] / (losses[t]! + 1e-20 * nadir![t])
        }
        return w
    }
}
