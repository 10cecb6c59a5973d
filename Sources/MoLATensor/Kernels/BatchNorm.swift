import Foundation

/// Batch normalisation over the rows of a rows×channels matrix (channels-last images
/// flattened: rows = N·H·W). Statistics are summed per thread over fixed row ranges and
/// combined in thread order (in Float64), so results are fixed for a given thread count.
public enum BatchNorm {
    /// Training mode: normalises with the batch's mean and (biased) variance, saves them
    /// for backward (`mean`, `invStd`), and moves the running averages towards them
    /// (running variance unbiased, as PyTorch). y may alias x.
    public static func forwardTrain(rows: Int, channels c: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                    beta: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                    mean: UnsafeMutablePointer<Float>, invStd: UnsafeMutablePointer<Float>,
                                    runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                                    momentum: Float = 0.1, epsilon: Float = 1e-5, threads: Int = Parallel.threads) {
        let sums = columnSums(rows: rows, channels: c, threads: threads) { r, acc in
            for j in 0..<c { acc[j] += Double(x[r * c + j]) }
        }
        for j in 0..<c { mean[j] = Float(sums[j] / Double(rows)) }
        let squares = columnSums(rows: rows, channels: c, threads: threads) { r, acc in
            for j in 0..<c { let d = Double(x[r * c + j] - mean[j]); acc[j] += d * d }
        }
        for j in 0..<c {
            let variance = squares[j] / Double(rows)
            invStd[j] = Float(1 / (variance + Double(epsilon)).squareRoot())
            let unbiased = rows > 1 ? variance * Double(rows) / Double(rows - 1) : variance
            runningMean[j] = (1 - momentum) * runningMean[j] + momentum * mean[j]
            runningVar[j] = (1 - momentum) * runningVar[j] + momentum * Float(unbiased)
        }
        normalize(rows: rows, channels: c, x: x, mean: mean, invStd: invStd, gamma: gamma, beta: beta, y: y, threads: threads)
    }

    /// Evaluation mode: normalises with the running averages. y may alias x.
    public static func forwardEval(rows: Int, channels c: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                   beta: UnsafePointer<Float>, runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
                                   y: UnsafeMutablePointer<Float>, epsilon: Float = 1e-5, threads: Int = Parallel.threads) {
        let invStd = (0..<c).map { 1 / (runningVar[$0] + epsilon).squareRoot() }
        invStd.withUnsafeBufferPointer {
            normalize(rows: rows, channels: c, x: x, mean: runningMean, invStd: $0.baseAddress!, gamma: gamma, beta: beta, y: y, threads: threads)
        }
    }

    /// y = (x − mean)·invStd·γ + β, row by row.
    static func normalize(rows: Int, channels c: Int, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                          gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, threads: Int) {
        // y = x·scale + shift, with scale = γ·invStd, shift = β − mean·scale.
        let scale = (0..<c).map { gamma[$0] * invStd[$0] }
        let shift = (0..<c).map { beta[$0] - mean[$0] * scale[$0] }
        scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
            let (s, t) = (sc.baseAddress!, sh.baseAddress!)
            Parallel.forRanges(rows, threads: threads, minPerThread: 256) { part in
                for r in part {
                    let xr = x + r * c, yr = y + r * c
                    for j in 0..<c { yr[j] = xr[j] * s[j] + t[j] }
                }
            }
        } }
    }

    /// Gradients: dx (overwritten; may alias dy), dγ += Σ dy·x̂, dβ += Σ dy, where
    /// x̂ = (x − mean)·invStd and dx = γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)).
    public static func backward(rows: Int, channels c: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
                                threads: Int = Parallel.threads) {
        let sums = columnSums(rows: rows, channels: 2 * c, threads: threads) { r, acc in
            for j in 0..<c {
                let g = Double(dy[r * c + j])
                acc[j] += g
                acc[c + j] += g * Double((x[r * c + j] - mean[j]) * invStd[j])
            }
        }
        let n = Double(rows)
        let meanDy = (0..<c).map { Float(sums[$0] / n) }
        let meanDyXhat = (0..<c).map { Float(sums[c + $0] / n) }
        for j in 0..<c {
            dBeta[j] += Float(sums[j])
            dGamma[j] += Float(sums[c + j])
        }
        meanDy.withUnsafeBufferPointer { md in meanDyXhat.withUnsafeBufferPointer { mdx in
            let (a, b) = (md.baseAddress!, mdx.baseAddress!)
            Parallel.forRanges(rows, threads: threads, minPerThread: 256) { part in
                for r in part {
                    let xr = x + r * c, gr = dy + r * c, dr = dx + r * c
                    for j in 0..<c {
                        let xhat = (xr[j] - mean[j]) * invStd[j]
                        dr[j] = gamma[j] * invStd[j] * (gr[j] - a[j] - xhat * b[j])
                    }
                }
            }
        } }
    }

    /// Per-column sums of `body`'s contributions, rows split over threads, each thread
    /// adding blocks of rows in Float64 and the thread totals added in order.
    static func columnSums(rows: Int, channels c: Int, threads: Int,
                           _ body: (Int, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
        let parts = max(1, min(threads, rows / 256))
        var partials = [Double](repeating: 0, count: parts * c)
        partials.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            Parallel.run(parts) { t in
                let acc = base + t * c
                for r in Parallel.range(of: t, parts: parts, count: rows) { body(r, acc) }
            }
        }
        return (0..<c).map { j in (0..<parts).reduce(0.0) { $0 + partials[$1 * c + j] } }
    }
}
