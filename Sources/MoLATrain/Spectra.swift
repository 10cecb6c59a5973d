import Foundation
import MoLAModel
import MoLAReport

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
    /// the square roots of the eigenvalues of the small C_out × C_out Gram matrix, found by
    /// cyclic Jacobi rotations in Float64.
    static func singularValues(_ w: [Float], rows: Int, columns: Int) -> [Double] {
        let n = rows
        var g = [Double](repeating: 0, count: n * n)
        for j in 0..<columns {
            let row = j * n
            for a in 0..<n {
                let wa = Double(w[row + a])
                if wa == 0 { continue }
                for b in a..<n { g[a * n + b] += wa * Double(w[row + b]) }
            }
        }
        for a in 0..<n { for b in 0..<a { g[a * n + b] = g[b * n + a] } }
        return jacobiEigenvalues(&g, n).map { max(0, $0).squareRoot() }.sorted(by: >)
    }

    static func jacobiEigenvalues(_ a: inout [Double], _ n: Int) -> [Double] {
        for _ in 0..<100 {
            var off = 0.0, diag = 0.0
            for i in 0..<n { diag += a[i * n + i] * a[i * n + i]; for j in (i + 1)..<n where j < n { off += a[i * n + j] * a[i * n + j] } }
            if off <= 1e-22 * max(diag, 1e-300) { break }
            for p in 0..<n {
                for q in (p + 1)..<n where q < n {
                    let apq = a[p * n + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {  // rotate columns p, q
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {  // rotate rows p, q
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                }
            }
        }
        return (0..<n).map { a[$0 * n + $0] }
    }
}
