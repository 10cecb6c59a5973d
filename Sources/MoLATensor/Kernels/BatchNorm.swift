import Foundation
import MoLASupport

/// Batch normalisation over the rows of a rows×channels matrix (channels-last images
/// flattened: rows = N·H·W), optionally fused with a following ReLU.
///
/// Statistics take one pass: each thread sums blocks of 32 rows in Float (vectorised over
/// channels), shifted by the first row to avoid cancellation, and adds the blocks in
/// Float64; thread totals are added in order, so results are fixed for a thread count.
public enum BatchNorm {
    static let block = 32

    /// Training mode: normalises with the batch's mean and (biased) variance, saves them
    /// for backward (`mean`, `invStd`), and moves the running averages towards them
    /// (running variance unbiased, as PyTorch). Adds `residual` (a residual block's other
    /// branch) and then applies ReLU, when asked, in the same pass. y may alias x.
    public static func forwardTrain(rows: Int, channels c: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                    beta: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                    mean: UnsafeMutablePointer<Float>, invStd: UnsafeMutablePointer<Float>,
                                    runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                                    momentum: Float = 0.1, epsilon: Float = 1e-5, residual: UnsafePointer<Float>? = nil, relu: Bool = false,
                                    engine: Engine = .default) {
        let shift = Array(UnsafeBufferPointer(start: x, count: c))
        let sums = shift.withUnsafeBufferPointer { sh in
            columnSums(rows: rows, channels: c, engine: engine) { r, s, q in
                let xr = x + r * c, base = sh.baseAddress!
                for j in 0..<c { let v = xr[j] - base[j]; s[j] += v; q[j] += v * v }
            }
        }
        // Per channel: the mean and (biased) variance of x − shift, over `n` rows.
        var n = Double(rows), shiftedMean = [Double](repeating: 0, count: c), variance = shiftedMean
        if let allReduce = engine.reduceStatistics {
            // Shifts differ between processes: sum raw Σx and Σx² in Float64 (exact enough
            // for Float data), then shift back by this process's shift.
            var all = [Double](repeating: 0, count: 2 * c + 1)
            for j in 0..<c {
                let sh = Double(shift[j])
                all[j] = sums.0[j] + Double(rows) * sh
                all[c + j] = sums.1[j] + 2 * sh * sums.0[j] + Double(rows) * sh * sh
            }
            all[2 * c] = Double(rows)
            allReduce(&all)
            n = all[2 * c]
            for j in 0..<c {
                let m = all[j] / n
                shiftedMean[j] = m - Double(shift[j])
                variance[j] = max(0, all[c + j] / n - m * m)
            }
        } else {
            for j in 0..<c {
                shiftedMean[j] = sums.0[j] / n
                variance[j] = max(0, sums.1[j] / n - shiftedMean[j] * shiftedMean[j])
            }
        }
        for j in 0..<c {
            mean[j] = Float(Double(shift[j]) + shiftedMean[j])
            invStd[j] = Float(1 / (variance[j] + Double(epsilon)).squareRoot())
            let unbiased = n > 1 ? variance[j] * n / (n - 1) : variance[j]
            runningMean[j] = (1 - momentum) * runningMean[j] + momentum * mean[j]
            runningVar[j] = (1 - momentum) * runningVar[j] + momentum * Float(unbiased)
        }
        normalize(rows: rows, channels: c, x: x, mean: mean, invStd: invStd, gamma: gamma, beta: beta, y: y, residual: residual,
                  relu: relu, engine: engine)
    }

    /// Evaluation mode: normalises with the running averages (then adds `residual` and
    /// applies ReLU, if asked). y may alias x.
    public static func forwardEval(rows: Int, channels c: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                   beta: UnsafePointer<Float>, runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
                                   y: UnsafeMutablePointer<Float>, epsilon: Float = 1e-5, residual: UnsafePointer<Float>? = nil,
                                   relu: Bool = false, engine: Engine = .default) {
        let invStd = (0..<c).map { 1 / (runningVar[$0] + epsilon).squareRoot() }
        invStd.withUnsafeBufferPointer {
            normalize(rows: rows, channels: c, x: x, mean: runningMean, invStd: $0.baseAddress!, gamma: gamma, beta: beta, y: y,
                      residual: residual, relu: relu, engine: engine)
        }
    }

    /// y = (x − mean)·invStd·γ + β (+ residual) (then max(·, 0) when `relu`), row by row.
    static func normalize(rows: Int, channels c: Int, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                          gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                          residual: UnsafePointer<Float>?, relu: Bool, engine: Engine) {
        let threads = engine.threads
        // y = x·scale + shift, with scale = γ·invStd, shift = β − mean·scale.
        let scale = (0..<c).map { gamma[$0] * invStd[$0] }
        let shift = (0..<c).map { beta[$0] - mean[$0] * scale[$0] }
        scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
            let (s, t) = (sc.baseAddress!, sh.baseAddress!)
            Parallel.forRanges(rows, threads: threads, minPerThread: 512) { part in
                for r in part {
                    let xr = x + r * c, yr = y + r * c
                    if let residual {
                        let rr = residual + r * c
                        if relu { for j in 0..<c { yr[j] = max(0, xr[j] * s[j] + t[j] + rr[j]) } } else { for j in 0..<c { yr[j] = xr[j] * s[j] + t[j] + rr[j] } }
                    } else if relu {
                        for j in 0..<c { yr[j] = max(0, xr[j] * s[j] + t[j]) }
                    } else {
                        for j in 0..<c { yr[j] = xr[j] * s[j] + t[j] }
                    }
                }
            }
        } }
    }

    /// Gradients: dx (overwritten; may alias dy), dγ += Σ g·x̂, dβ += Σ g, where x̂ = (x −
    /// mean)·invStd, g = dy (or, after a fused ReLU with output `reluOutput`, dy where that
    /// output was positive) and dx = γ·invStd·(g − mean(g) − x̂·mean(g·x̂)).
    public static func backward(rows: Int, channels c: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
                                reluOutput: UnsafePointer<Float>? = nil, engine: Engine = .default) {
        let threads = engine.threads
        let sums = columnSums(rows: rows, channels: c, engine: engine) { r, s, q in
            let xr = x + r * c, gr = dy + r * c
            if let out = reluOutput {
                let o = out + r * c
                for j in 0..<c { let g = o[j] > 0 ? gr[j] : 0; s[j] += g; q[j] += g * (xr[j] - mean[j]) }
            } else {
                for j in 0..<c { s[j] += gr[j]; q[j] += gr[j] * (xr[j] - mean[j]) }
            }
        }
        // Σ g·x̂ = invStd·Σ g·(x − mean). dγ and dβ take this process's rows; dx the means
        // over the batch the statistics came from (the global one when synchronised).
        let sumGXhat = (0..<c).map { sums.1[$0] * Double(invStd[$0]) }
        var n = Double(rows), total = (sums.0, sumGXhat)
        if let allReduce = engine.reduceStatistics {
            var all = sums.0 + sumGXhat + [Double(rows)]
            allReduce(&all)
            total = (Array(all[0..<c]), Array(all[c..<(2 * c)]))
            n = all[2 * c]
        }
        let meanG = (0..<c).map { Float(total.0[$0] / n) }
        let meanGXhat = (0..<c).map { Float(total.1[$0] / n) }
        let coef = (0..<c).map { gamma[$0] * invStd[$0] }
        for j in 0..<c {
            dBeta[j] += Float(sums.0[j])
            dGamma[j] += Float(sumGXhat[j])
        }
        meanG.withUnsafeBufferPointer { ma in meanGXhat.withUnsafeBufferPointer { mb in coef.withUnsafeBufferPointer { cf in
            let (a, b, k) = (ma.baseAddress!, mb.baseAddress!, cf.baseAddress!)
            Parallel.forRanges(rows, threads: threads, minPerThread: 512) { part in
                // Explicit vectors: with dx aliasing dy (layers write over a dead gradient)
                // the compiler's vectorised loop would fail its overlap check and run scalar.
                if c % 8 == 0 {
                    typealias V = SIMD8<Float>
                    @inline(__always) func ld(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
                    for r in part {
                        let xr = x + r * c, gr = dy + r * c, dr = dx + r * c
                        var j = 0
                        while j < c {
                            var g = ld(gr + j)
                            if let out = reluOutput { g.replace(with: V(), where: ld(out + r * c + j) .<= V()) }
                            let v = ld(k + j) * (g - ld(a + j) - (ld(xr + j) - ld(mean + j)) * ld(invStd + j) * ld(b + j))
                            UnsafeMutableRawPointer(dr + j).storeBytes(of: v, as: V.self)
                            j += 8
                        }
                    }
                    return
                }
                for r in part {
                    let xr = x + r * c, gr = dy + r * c, dr = dx + r * c
                    if let out = reluOutput {
                        let o = out + r * c
                        for j in 0..<c {
                            let g = o[j] > 0 ? gr[j] : 0
                            dr[j] = k[j] * (g - a[j] - (xr[j] - mean[j]) * invStd[j] * b[j])
                        }
                    } else {
                        for j in 0..<c { dr[j] = k[j] * (gr[j] - a[j] - (xr[j] - mean[j]) * invStd[j] * b[j]) }
                    }
                }
            }
        } } }
    }

    /// Two per-column sums over all rows: `body(r, s, q)` adds row r's contributions into the
    /// Float block accumulators s and q; blocks of `block` rows are totalled in Float64 per
    /// thread, threads in order.
    static func columnSums(rows: Int, channels c: Int, engine: Engine,
                           _ body: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> ([Double], [Double]) {
        let threads = engine.threads
        let parts = max(1, min(threads, rows / 512))
        var partials = [Double](repeating: 0, count: parts * 2 * c)
        partials.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            Parallel.run(parts) { t in
                let total = base + t * 2 * c
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * c) { acc in
                    let s = acc.baseAddress!, q = s + c
                    let range = Parallel.range(of: t, parts: parts, count: rows)
                    var r = range.lowerBound
                    while r < range.upperBound {
                        s.update(repeating: 0, count: 2 * c)
                        let end = min(range.upperBound, r + block)
                        while r < end { body(r, s, q); r += 1 }
                        for j in 0..<c { total[j] += Double(s[j]); total[c + j] += Double(q[j]) }
                    }
                }
            }
        }
        return ((0..<c).map { j in (0..<parts).reduce(0.0) { $0 + partials[$1 * 2 * c + j] } },
                (0..<c).map { j in (0..<parts).reduce(0.0) { $0 + partials[$1 * 2 * c + c + j] } })
    }
}
