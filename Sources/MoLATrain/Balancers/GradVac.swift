import MoLASupport

extension Balancer {
    public static let gradvac = Balancer(name: "gradvac", summary: "gradients turned to their pairs' running cosine (Wang 2021)",
                                         kind: .combinesGradients { _ in GradVac() })
}

/// Gradient vaccine (Wang et al., ICLR 2021; TorchJD's `GradVac`, β = 0.5): for each task
/// i, and each other task j in random order, when g_i's cosine φ with g_j is below the
/// running target φ̂_ij, g_j is added to g_i times
/// |g_i|·(φ̂√(1−φ²) − φ√(1−φ̂²)) / (|g_j|·√(1−φ̂²) + ε), turning g_i to the target angle;
/// φ̂_ij ← (1−β)·φ̂_ij + β·φ every time. The results summed. With φ̂ = 0 (the start) it
/// is PCGrad. All in the Gram matrix: row i of C holds g_i's coefficients.
///
/// φ̂ is kept per pair of the run's tasks (checkpointed), so a batch without some task
/// leaves that task's pairs as they were.
public final class GradVac: GradientCombiner, @unchecked Sendable {
    public var beta = 0.5, epsilon = 1e-8
    /// Whether the j's are visited in random order (TorchJD's); off for a fixed order.
    public var shuffles = true
    /// φ̂ by pair of task indices, `width` × `width`.
    var targets: [Double] = [], width = 0

    public init() {}

    public var state: [String: [Double]] {
        get { ["targets": targets, "width": [Double(width)]] }
        set { targets = newValue["targets"] ?? targets; width = Int(newValue["width"]?.first ?? Double(width)) }
    }

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        combine(grads, rows: TaskRows(count: grads.count), rng: &rng)
    }

    public func combine(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Float] {
        weightedSum(weights(grads, tasks: rows.tasks, rng: &rng), grads)
    }

    func weights(_ grads: [[Float]], tasks: [Int], rng: inout RandomGenerator) -> [Double] {
        grow(to: (tasks.max() ?? -1) + 1)
        let g = gram(grads), m = g.count
        var c = (0..<m).map { i in (0..<m).map { $0 == i ? 1.0 : 0 } }
        for i in 0..<m {
            var cg = g[i]  // (C_i·G)_j: the modified g_i's dot product with g_j
            var others = (0..<m).filter { $0 != i }
            if shuffles { for k in stride(from: others.count - 1, to: 0, by: -1) { others.swapAt(k, rng.nextInt(below: k + 1)) } }
            for j in others {
                let normI = max(0, zip(cg, c[i]).reduce(0) { $0 + $1.0 * $1.1 }).squareRoot(), normJ = max(0, g[j][j]).squareRoot()
                let phi = cg[j] / (normI * normJ + epsilon)
                let key = tasks[i] * width + tasks[j], target = targets[key]
                if phi < target {
                    let w = normI * (target * max(0, 1 - phi * phi).squareRoot() - phi * max(0, 1 - target * target).squareRoot())
                        / (normJ * max(0, 1 - target * target).squareRoot() + epsilon)
                    c[i][j] += w
                    for k in 0..<m { cg[k] += w * g[j][k] }
                }
                targets[key] = (1 - beta) * target + beta * phi
            }
        }
        return (0..<m).map { j in (0..<m).reduce(0.0) { $0 + c[$1][j] } }
    }

    /// Widens φ̂ to `n` tasks, keeping the targets known.
    func grow(to n: Int) {
        guard n > width else { return }
        var wider = [Double](repeating: 0, count: n * n)
        for i in 0..<width { for j in 0..<width { wider[i * n + j] = targets[i * width + j] } }
        (targets, width) = (wider, n)
    }
}
