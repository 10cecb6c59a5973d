import Foundation

/// Adam on a handful of numbers a loss weighting learns (FAMO's logits, UW's and IMTL-L's
/// scales), as `torch.optim.Adam` steps them (β = 0.9, 0.999; ε = 1e-8 outside the root).
struct ScalarAdam: Equatable, Sendable {
    var learningRate: Double
    var m: [Double], v: [Double]
    var steps = 0

    init(count: Int, learningRate: Double) {
        self.learningRate = learningRate
        m = Array(repeating: 0, count: count)
        v = m
    }

    mutating func step(_ params: inout [Double], gradient g: [Double]) {
        let (b1, b2) = (0.9, 0.999)
        steps += 1
        for i in params.indices {
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            let mHat = m[i] / (1 - pow(b1, Double(steps))), vHat = v[i] / (1 - pow(b2, Double(steps)))
            params[i] -= learningRate * mHat / (vHat.squareRoot() + 1e-8)
        }
    }

    /// The moments and step count, for a checkpoint.
    var state: [String: [Double]] {
        get { ["m": m, "v": v, "steps": [Double(steps)]] }
        set {
            m = newValue["m"] ?? m
            v = newValue["v"] ?? v
            steps = Int(newValue["steps"]?.first ?? 0)
        }
    }
}
