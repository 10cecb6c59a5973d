import Foundation
import MoLASupport

/// Where a training step sits in its run: what a model whose forward changes over training
/// needs (LTB's warm-up, temperature and draws).
public struct TrainingProgress: Sendable {
    public var step: Int
    /// Epochs done, counted in steps (step / steps per epoch), so short runs see the schedule.
    public var epoch: Double
    /// The epochs the run is planned for.
    public var epochs: Int
    public var seed: UInt64

    public init(step: Int, epoch: Double, epochs: Int, seed: UInt64) {
        self.step = step
        self.epoch = epoch
        self.epochs = epochs
        self.seed = seed
    }
}

/// Learning to branch (Guo et al., ICML 2020) as LibMTL schedules it: at each mixing point
/// column i's input is one parent column j, drawn per step by hard Gumbel-softmax from
/// learned logits θ_i· (one-hot forward, the soft sample's gradient backward: the
/// straight-through estimator), at temperature τ = epochs/20/√(epoch + 1). For the first 1%
/// of the epochs every column's input is the sum of all columns (the logits untouched), in
/// evaluation too. After it, evaluation takes each column's most likely parent, the paper's
/// final tree (LibMTL samples at test time too). The draws come from the run's seed and step, alike on every
/// rank and after a resume.
struct ColumnBranching {
    let columns: Int
    /// The step's soft sample per row (nil: warm-up or evaluation, no gradient to θ).
    private(set) var soft: [Float]? = nil
    private(set) var temperature: Float = 1

    /// The T×T mixing for this forward from the logits θ (row i: column i's parents).
    mutating func mixing(logits: UnsafePointer<Float>, unit: Int, progress: TrainingProgress, training: Bool) -> [Float] {
        let t = columns
        soft = nil
        let warmUp = progress.epoch < Double(progress.epochs) / 100
        if warmUp { return [Float](repeating: 1, count: t * t) }  // evaluation too: the model trained so far
        guard training else {
            return (0..<(t * t)).map { k in
                let i = k / t, best = (0..<t).max { logits[i * t + $0] < logits[i * t + $1] }!
                return k % t == best ? 1 : 0
            }
        }
        temperature = Float(Double(progress.epochs) / 20 / (progress.epoch + 1).squareRoot())
        var rng = RandomGenerator(seed: progress.seed, stream: 0x17B_0000_0000 &+ UInt64(progress.step) &* 64 &+ UInt64(unit))
        var y = [Float](repeating: 0, count: t * t), hard = y
        for i in 0..<t {
            let z = (0..<t).map { j -> Double in
                let u = min(max(rng.nextDouble(), 1e-12), 1 - 1e-12)
                return (Double(logits[i * t + j]) - log(-log(u))) / Double(temperature)
            }
            let top = z.max()!, e = z.map { exp($0 - top) }, sum = e.reduce(0, +)
            for j in 0..<t { y[i * t + j] = Float(e[j] / sum) }
            hard[i * t + z.firstIndex(of: top)!] = 1
        }
        soft = y
        return hard
    }

    /// dθ += the straight-through gradient of dα (through the soft sample's softmax).
    func backward(_ dAlpha: [Float], into dLogits: UnsafeMutablePointer<Float>) {
        guard let y = soft else { return }
        let t = columns
        for i in 0..<t {
            var inner: Float = 0
            for j in 0..<t { inner += dAlpha[i * t + j] * y[i * t + j] }
            for j in 0..<t { dLogits[i * t + j] += y[i * t + j] * (dAlpha[i * t + j] - inner) / temperature }
        }
    }
}
