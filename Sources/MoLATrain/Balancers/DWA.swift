import Foundation
import MoLASupport

extension Balancer {
    public static let dwa = Balancer(name: "dwa", summary: "loss weights from each loss's rate of fall per epoch (Liu 2019)",
                                     kind: .weightsLosses { DynamicWeightAverage(tasks: $0.tasks, stepsPerEpoch: $0.stepsPerEpoch) })
}

/// DWA, dynamic weight average (Liu et al., CVPR 2019; LibMTL's `DWA`): in epoch e ≥ 2 the
/// weights are T·softmax(r/2), r_t = L̄_t(e−1)/L̄_t(e−2), L̄_t an epoch's mean of task t's
/// step losses; 1 in the first two epochs. Epochs are the run's (steps per epoch).
public struct DynamicWeightAverage: LossWeighting, Equatable {
    let stepsPerEpoch: Int
    static let temperature = 2.0
    /// The epoch being summed, its sums and counts, and the last two epochs' means.
    var epoch = 0
    var sums: [Double], counts: [Double]
    var last: [Double]?, beforeLast: [Double]?
    /// The weights of the current epoch.
    var current: [Double]

    public init(tasks: Int, stepsPerEpoch: Int) {
        self.stepsPerEpoch = max(1, stepsPerEpoch)
        sums = Array(repeating: 0, count: tasks)
        counts = sums
        current = Array(repeating: 1, count: tasks)
    }

    public var taskWeights: [Double]? { current }

    public var state: [String: [Double]] {
        get {
            var s = ["epoch": [Double(epoch)], "sums": sums, "counts": counts, "current": current]
            s["last"] = last
            s["before_last"] = beforeLast
            return s
        }
        set {
            epoch = Int(newValue["epoch"]?.first ?? 0)
            sums = newValue["sums"] ?? sums
            counts = newValue["counts"] ?? counts
            current = newValue["current"] ?? current
            last = newValue["last"]
            beforeLast = newValue["before_last"]
        }
    }

    /// The weights of epoch e from the means of epochs e−1 and e−2 (each task's mean; a task
    /// without a loss in an epoch keeps ratio 1).
    static func weights(last: [Double], beforeLast: [Double]) -> [Double] {
        let r = zip(last, beforeLast).map { $1 > 0 ? $0 / $1 / temperature : 1 / temperature }
        return softmax(r).map { Double(r.count) * $0 }
    }

    public mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double] {
        let e = step / stepsPerEpoch
        if e != epoch {  // close the epoch: its means become the newest
            let means = zip(sums, counts).map { $1 > 0 ? $0 / $1 : 0 }
            (beforeLast, last) = e == epoch + 1 ? (last, means) : (nil, nil)
            sums = sums.map { _ in 0 }; counts = sums
            epoch = e
            current = last.flatMap { l in beforeLast.map { Self.weights(last: l, beforeLast: $0) } } ?? current.map { _ in 1 }
        }
        for (t, l) in losses.enumerated() { if let l { sums[t] += l; counts[t] += 1 } }
        return losses.enumerated().map { $0.element == nil ? 0 : current[$0.offset] }
    }
}
