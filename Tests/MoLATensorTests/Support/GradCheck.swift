import MoLASupport
import MoLATensor
import Testing

/// Checks analytic gradients against central finite differences of a Float64 reference.
///
/// The loss is L = Σ reference(inputs) ⊙ weights (weights random, playing dL/dy), so
/// dL/dinput computed by differences must equal our backward given dy = weights.
struct GradCheck {
    var rng = RandomGenerator(seed: 99)

    mutating func random(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in rng.uniform(-scale, scale) } }

    /// `inputs`: the tensors to differentiate (Float32 values, as our kernels see them).
    /// `reference`: the op in Float64. `analytic[i]`: our gradient for input i.
    /// Checks up to `samples` random entries of each input.
    mutating func check(inputs: [[Float]], dy: [Float], analytic: [[Float]], samples: Int = 40,
                        step: Double = 1e-3, tolerance: Double = 2e-3, _ what: String,
                        reference: ([[Double]]) -> [Double],
                        sourceLocation: SourceLocation = #_sourceLocation) {
        let w = dy.map(Double.init)
        func loss(_ x: [[Double]]) -> Double {
            let y = reference(x)
            precondition(y.count == w.count, "reference output \(y.count) ≠ dy \(w.count)")
            var s = 0.0
            for i in 0..<y.count { s += y[i] * w[i] }
            return s
        }
        var x = inputs.map { $0.map(Double.init) }
        for (t, input) in inputs.enumerated() {
            #expect(analytic[t].count == input.count, "\(what): gradient \(t) has the wrong size", sourceLocation: sourceLocation)
            let picks = input.count <= samples ? Array(0..<input.count) : (0..<samples).map { _ in rng.nextInt(below: input.count) }
            var worst = 0.0, at = -1
            for i in picks {
                let keep = x[t][i]
                x[t][i] = keep + step; let up = loss(x)
                x[t][i] = keep - step; let down = loss(x)
                x[t][i] = keep
                let numeric = (up - down) / (2 * step)
                let ours = Double(analytic[t][i])
                let err = abs(ours - numeric) / max(1, abs(numeric), abs(ours))
                if err > worst { worst = err; at = i }
            }
            #expect(worst < tolerance, "\(what): input \(t), entry \(at): relative error \(worst)", sourceLocation: sourceLocation)
        }
    }
}

/// Elementwise closeness of our Float32 result to a Float64 reference.
func expectClose(_ ours: [Float], _ reference: [Double], tolerance: Double = 1e-4, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(ours.count == reference.count, "\(what): sizes differ", sourceLocation: sourceLocation)
    var worst = 0.0
    for i in 0..<min(ours.count, reference.count) {
        worst = max(worst, abs(Double(ours[i]) - reference[i]) / max(1, abs(reference[i])))
    }
    #expect(worst < tolerance, "\(what): worst relative error \(worst)", sourceLocation: sourceLocation)
}
