import Foundation

/// The positive x with G·x = x^(−p) (elementwise power): the weights of Nash-MTL (p = 1)
/// and FairGrad (p = 1/α). It is where f(x) = ½xᵀGx + Σ_t φ(x_t), φ' = −x^(−p), is least;
/// f is strictly convex on x > 0, so the point is unique and damped Newton steps, kept
/// positive, find it to rounding.
enum PowerEquation {
    static func solve(_ g: [[Double]], power p: Double) -> [Double] {
        let n = g.count
        guard n > 0 else { return [] }
        func f(_ x: [Double]) -> Double {
            let quadratic = 0.5 * zip(x, multiply(g, x)).reduce(0) { $0 + $1.0 * $1.1 }
            return quadratic + x.reduce(0) { $0 + (p == 1 ? -log($1) : -pow($1, 1 - p) / (1 - p)) }
        }
        // Start at a multiple of 1 that solves the equation summed over the tasks.
        let total = max(g.joined().reduce(0, +), 1e-300)
        var x = [Double](repeating: pow(Double(n) / total, 1 / (1 + p)), count: n)
        for _ in 0..<200 {
            let gx = multiply(g, x), residual = (0..<n).map { gx[$0] - pow(x[$0], -p) }
            let size = (0..<n).reduce(0.0) { $0 + abs(gx[$1]) + pow(x[$1], -p) }
            if residual.map(abs).max()! <= 1e-14 * size { break }
            var h = g
            for i in 0..<n { h[i][i] += p * pow(x[i], -p - 1) }
            let d = solveLinear(h, residual.map { -$0 })
            let slope = zip(residual, d).reduce(0) { $0 + $1.0 * $1.1 }
            var t = 1.0
            while (0..<n).contains(where: { x[$0] + t * d[$0] <= 0 }) { t *= 0.5 }
            let fx = f(x)
            while t > 1e-12, f((0..<n).map { x[$0] + t * d[$0] }) > fx + 1e-4 * t * slope { t *= 0.5 }
            x = (0..<n).map { x[$0] + t * d[$0] }
        }
        return x
    }
}
