import Foundation
import MoLAModel
import MoLAReport
import MoLASupport

extension LayerSpectrum {
    public static func analyse(name: String, conv: Conv) -> LayerSpectrum {
        let rows = conv.outChannels, cols = conv.kernel * conv.kernel * conv.inChannels
        func summary(_ w: [Float]) -> Summary {
            let s = singularValues(w, rows: rows, columns: cols)
            let total = s.reduce(0, +)
            var acc = 0.0, k = 0
            while k < s.count && acc < 0.99 * total { acc += s[k]; k += 1 }
            let top = s.first ?? 0
            return Summary(k99: k, top: top, rank: min(rows, cols), values: s.map { top > 0 ? $0 / top : 0 })
        }
        let w = Array(UnsafeBufferPointer(start: conv.store.values + conv.weight.offset, count: conv.weight.count))
        let adapted = (0..<(conv.adapters?.count ?? 0)).map { summary(conv.effectiveWeight($0)) }
        return LayerSpectrum(layer: name, rows: rows, columns: cols, shared: summary(w), adapted: adapted)
    }

    /// How far each adapter has moved the layers it adapts: ‖ΔW_t‖_F / ‖W‖_F over all of
    /// them together, one value per adapter (0 at initialisation, where B = 0). A task whose
    /// adapter stays near 0 is served by the shared weights alone.
    public static func adapterGrowth(_ layers: [(name: String, conv: Conv)]) -> [Double] {
        let count = layers.map { $0.conv.adapters?.count ?? 0 }.max() ?? 0
        var shared = 0.0, delta = [Double](repeating: 0, count: count)
        for (_, conv) in layers {
            let w = UnsafeBufferPointer(start: conv.store.values + conv.weight.offset, count: conv.weight.count)
            shared += w.reduce(0) { $0 + Double($1) * Double($1) }
            for t in 0..<(conv.adapters?.count ?? 0) {
                delta[t] += zip(conv.effectiveWeight(t), w).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            }
        }
        return delta.map { ($0 / max(shared, 1e-30)).squareRoot() }
    }

    /// Singular values, largest first, of the weight stored as (k·k·C_in) × C_out (our
    /// layout), i.e. the transpose of the C_out × (k·k·C_in) matrix: same values. They are
    /// the square roots of the eigenvalues of the small C_out × C_out Gram matrix, in
    /// Float64: Householder reduction to tridiagonal form, then implicit QL with Wilkinson
    /// shifts (about 4n³/3 operations; cyclic Jacobi, used before, took ten sweeps of 2n³
    /// and most of the end of a ResNet-18 run).
    static func singularValues(_ w: [Float], rows: Int, columns: Int) -> [Double] {
        var g = gram(w, rows: rows, columns: columns)
        return symmetricEigenvalues(&g, rows).map { max(0, $0).squareRoot() }.sorted(by: >)
    }

    /// G = M·Mᵀ (n × n, Float64) for the n × columns matrix M stored columns × n: each
    /// entry a dot product of two of M's rows (transposed once into Float64), four rows of
    /// G at a time so that each row of M read from memory serves four from the cache, the
    /// blocks of four dealt to the cores in turn. Each entry is summed in one fixed order, so the result does not depend on the
    /// thread count.
    static func gram(_ w: [Float], rows n: Int, columns: Int, threads: Int = Parallel.cores) -> [Double] {
        var m = [Double](repeating: 0, count: n * columns)
        for j in 0..<columns { for a in 0..<n { m[a * columns + j] = Double(w[j * n + a]) } }
        var g = [Double](repeating: 0, count: n * n)
        let blocks = (n + 3) / 4, workers = max(1, min(threads, blocks))
        m.withUnsafeBufferPointer { mp in
            g.withUnsafeMutableBufferPointer { gp in
                let mb = mp.baseAddress!, gb = gp.baseAddress!
                Parallel.run(workers) { worker in
                    for block in stride(from: worker, to: blocks, by: workers) {
                        let a0 = block * 4, count = min(4, n - a0)
                        for b in a0..<n {
                            let rb = mb + b * columns
                            var sums = SIMD4<Double>(repeating: 0)
                            for r in 0..<count {
                                guard a0 + r <= b else { continue }
                                let ra = mb + (a0 + r) * columns
                                var acc = SIMD4<Double>(repeating: 0)
                                var j = 0
                                while j + 4 <= columns {
                                    acc.addProduct(UnsafeRawPointer(ra + j).loadUnaligned(as: SIMD4<Double>.self),
                                                   UnsafeRawPointer(rb + j).loadUnaligned(as: SIMD4<Double>.self))
                                    j += 4
                                }
                                var tail = 0.0
                                while j < columns { tail += ra[j] * rb[j]; j += 1 }
                                sums[r] = acc.sum() + tail
                            }
                            for r in 0..<count where a0 + r <= b {
                                gb[(a0 + r) * n + b] = sums[r]
                                gb[b * n + a0 + r] = sums[r]
                            }
                        }
                    }
                }
            }
        }
        return g
    }

    /// The eigenvalues of a symmetric n × n matrix (row-major; overwritten).
    static func symmetricEigenvalues(_ a: inout [Double], _ n: Int) -> [Double] {
        guard n > 1 else { return n == 1 ? [a[0]] : [] }
        // Householder: for each column k, H = I − 2vvᵀ zeroes A[k+2..., k]; the trailing
        // block becomes A − 2(vqᵀ + qvᵀ), q = p − (vᵀp)v with p = A·v.
        var e = [Double](repeating: 0, count: n)  // e[i]: the entry between i and i + 1
        var v = [Double](repeating: 0, count: n), p = v
        for k in 0..<(n - 1) {
            let lo = k + 1
            var norm = 0.0
            for i in lo..<n { norm += a[i * n + k] * a[i * n + k] }
            norm = norm.squareRoot()
            let x0 = a[lo * n + k]
            guard n - lo > 1, norm > 0 else { e[k] = x0; continue }
            let alpha = x0 > 0 ? -norm : norm
            for i in lo..<n { v[i] = a[i * n + k] }
            v[lo] -= alpha
            var vv = 0.0
            for i in lo..<n { vv += v[i] * v[i] }
            guard vv > 0 else { e[k] = x0; continue }
            let inv = 1 / vv.squareRoot()
            for i in lo..<n { v[i] *= inv }
            var vp = 0.0
            for i in lo..<n {
                var sum = 0.0
                for j in lo..<n { sum += a[i * n + j] * v[j] }
                p[i] = sum
                vp += v[i] * sum
            }
            for i in lo..<n { p[i] -= vp * v[i] }  // q
            for i in lo..<n { for j in lo..<n { a[i * n + j] -= 2 * (v[i] * p[j] + p[i] * v[j]) } }
            e[k] = alpha
        }
        var d = (0..<n).map { a[$0 * n + $0] }
        e[n - 1] = 0
        // Implicit QL on the tridiagonal (d, e).
        for l in 0..<n {
            for _ in 0..<60 {
                var m = l
                while m < n - 1 {
                    if abs(e[m]) <= Double.ulpOfOne * (abs(d[m]) + abs(d[m + 1])) { break }
                    m += 1
                }
                if m == l { break }
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = (g * g + 1).squareRoot()
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
                var s = 1.0, c = 1.0, shift = 0.0
                var i = m - 1, deflated = false
                while i >= l {
                    let f = s * e[i], b = c * e[i]
                    r = (f * f + g * g).squareRoot()
                    e[i + 1] = r
                    if r == 0 { d[i + 1] -= shift; e[m] = 0; deflated = true; break }
                    s = f / r; c = g / r
                    g = d[i + 1] - shift
                    r = (d[i] - g) * s + 2 * c * b
                    shift = s * r
                    d[i + 1] = g + shift
                    g = c * r - b
                    i -= 1
                }
                if deflated { continue }
                d[l] -= shift; e[l] = g; e[m] = 0
            }
        }
        return d
    }
}
