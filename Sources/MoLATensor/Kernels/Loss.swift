import Foundation

/// Softmax and cross-entropy over the rows of a rows×classes matrix of logits.
public enum Softmax {
    /// y = softmax(x) per row (max subtracted first, for range). y may alias x.
    public static func forward(rows: Int, classes c: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * c, yr = y + r * c
            var m = -Float.infinity
            for j in 0..<c { m = max(m, xr[j]) }
            var sum: Float = 0
            for j in 0..<c { let e = expf(xr[j] - m); yr[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<c { yr[j] *= inv }
        }
    }

    /// dx = y ⊙ (dy − Σ dy·y) per row (overwritten), from the forward output y.
    public static func backward(rows: Int, classes c: Int, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let yr = y + r * c, gr = dy + r * c, dr = dx + r * c
            var dot: Float = 0
            for j in 0..<c { dot += gr[j] * yr[j] }
            for j in 0..<c { dr[j] = yr[j] * (gr[j] - dot) }
        }
    }
}

public enum CrossEntropy {
    /// Mean cross-entropy of softmax(logits) against `labels` over the rows listed in
    /// `select` (all rows when nil), times `weight`. When `dLogits` is given it receives the
    /// gradient of that value (overwritten; rows not selected get 0). Returns the loss.
    @discardableResult
    public static func loss(rows: Int, classes c: Int, logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                            select: [Int]? = nil, weight: Float = 1, dLogits: UnsafeMutablePointer<Float>? = nil) -> Double {
        let chosen = select ?? Array(0..<rows)
        dLogits?.update(repeating: 0, count: rows * c)
        guard !chosen.isEmpty else { return 0 }
        let scale = weight / Float(chosen.count)
        var total = 0.0
        for r in chosen {
            let xr = logits + r * c
            let label = Int(labels[r])
            precondition((0..<c).contains(label), "label \(label) outside 0..<\(c)")
            var m = -Float.infinity
            for j in 0..<c { m = max(m, xr[j]) }
            var sum: Double = 0
            for j in 0..<c { sum += Double(expf(xr[j] - m)) }
            let logSum = Double(m) + log(sum)
            total += logSum - Double(xr[label])
            if let d = dLogits {
                let dr = d + r * c
                for j in 0..<c { dr[j] = Float(exp(Double(xr[j]) - logSum)) * scale }
                dr[label] -= scale
            }
        }
        return total / Double(chosen.count) * Double(weight)
    }

    /// The index of each row's largest logit.
    public static func argmax(rows: Int, classes c: Int, logits: UnsafePointer<Float>) -> [Int32] {
        (0..<rows).map { r in
            let xr = logits + r * c
            var best = 0
            for j in 1..<max(1, c) where xr[j] > xr[best] { best = j }
            return Int32(best)
        }
    }
}
