import Foundation

/// Linear algebra on the small T × T matrices of the balancers (T is the task count):
/// dense, in Double, exact enough that the peers' float64 answers are met within 1e-9.

/// Eigenvalues and eigenvectors (columns) of a small symmetric matrix, by cyclic Jacobi
/// rotations (exact enough for T × T Gram matrices; T is the task count).
public enum SymmetricEigen {
    public static func decompose(_ m: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
        let n = m.count
        var a = m, v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0 } }
        for _ in 0..<100 {
            let off = (0..<n).reduce(0.0) { acc, i in acc + (0..<n).reduce(0.0) { $1 == i ? $0 : $0 + a[i][$1] * a[i][$1] } }
            let scale = (0..<n).reduce(0.0) { $0 + a[$1][$1] * a[$1][$1] }
            if off <= 1e-30 * max(scale, 1e-300) { break }
            for p in 0..<n { for q in (p + 1)..<n where a[p][q] != 0 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {  // A ← Jᵀ A J, V ← V J
                    let (akp, akq) = (a[k][p], a[k][q])
                    a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let (apk, aqk) = (a[p][k], a[q][k])
                    a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let (vkp, vkq) = (v[k][p], v[k][q])
                    v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                }
            } }
        }
        return ((0..<n).map { a[$0][$0] }, v)
    }
}

extension SymmetricEigen {
    /// The Moore–Penrose pseudo-inverse of a symmetric positive semi-definite matrix:
    /// eigenvalues at most `relativeTolerance` × the largest count as zero (as
    /// `torch.linalg.pinv`'s cut-off).
    public static func pseudoInverse(_ m: [[Double]], relativeTolerance: Double = 1e-12) -> [[Double]] {
        let n = m.count
        let (values, vectors) = decompose(m)
        let cut = (values.map(abs).max() ?? 0) * relativeTolerance
        let kept = (0..<n).filter { abs(values[$0]) > cut }
        func entry(_ i: Int, _ j: Int) -> Double {
            var sum = 0.0
            for k in kept { sum += vectors[i][k] * vectors[j][k] / values[k] }
            return sum
        }
        return (0..<n).map { i in (0..<n).map { j in entry(i, j) } }
    }
}

/// x with a·x = b, by Gaussian elimination with partial pivoting (a square, non-singular).
func solveLinear(_ a: [[Double]], _ b: [Double]) -> [Double] {
    let n = b.count
    var m = a, x = b
    for c in 0..<n {
        let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
        m.swapAt(c, p); x.swapAt(c, p)
        guard m[c][c] != 0 else { continue }
        for r in (c + 1)..<n where m[r][c] != 0 {
            let f = m[r][c] / m[c][c]
            for k in c..<n { m[r][k] -= f * m[c][k] }
            x[r] -= f * x[c]
        }
    }
    for c in stride(from: n - 1, through: 0, by: -1) {
        x[c] = m[c][c] == 0 ? 0 : (x[c] - ((c + 1)..<n).reduce(0.0) { $0 + m[c][$1] * x[$1] }) / m[c][c]
    }
    return x
}

/// softmax(x): exp(x_i − max x) / Σ_j exp(x_j − max x).
func softmax(_ x: [Double]) -> [Double] {
    let top = x.max() ?? 0
    let e = x.map { exp($0 - top) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

/// |g|, summed in Double.
func norm(_ g: [Float]) -> Double { dot(g, g).squareRoot() }

/// G·v for a small matrix.
func multiply(_ g: [[Double]], _ v: [Double]) -> [Double] { g.map { row in zip(row, v).reduce(0) { $0 + $1.0 * $1.1 } } }
