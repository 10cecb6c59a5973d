import MoLASupport
/// Element-wise arithmetic and moving rows of a batch (splitting a batch by task and
/// merging it back). Gradients: add passes dy to both inputs; scale by s multiplies dy by s;
/// a gather's gradient is the scatter-add of dy, and the reverse.
public enum Elementwise {
    /// out = a + b (out may alias a or b: explicit vectors, where the compiler's loop would
    /// fail its overlap check and run scalar).
    public static func add(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                           engine: Engine = .default) {
        Parallel.forRanges(n, threads: engine.threads, minPerThread: 1 << 16) { part in
            var i = part.lowerBound
            while i + 8 <= part.upperBound {
                let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: v, as: SIMD8<Float>.self)
                i += 8
            }
            while i < part.upperBound { out[i] = a[i] + b[i]; i += 1 }
        }
    }

    /// y += alpha·x.
    public static func axpy(_ n: Int, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        Parallel.forRanges(n, threads: engine.threads, minPerThread: 1 << 16) { part in
            for i in part { y[i] += alpha * x[i] }
        }
    }

    /// x *= s.
    public static func scale(_ n: Int, _ s: Float, _ x: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        Parallel.forRanges(n, threads: engine.threads, minPerThread: 1 << 16) { part in
            for i in part { x[i] *= s }
        }
    }

    /// out = a ⊙ b, element by element (out may alias either).
    public static func multiply(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                engine: Engine = .default) {
        Parallel.forRanges(n, threads: engine.threads, minPerThread: 1 << 16) { part in
            for i in part { out[i] = a[i] * b[i] }
        }
    }

    /// Rows of [a | b]: each of `rows` rows is a's `ca` values then b's `cb` (channels-last
    /// maps joined along channels).
    public static func concatChannels(rows: Int, _ a: UnsafePointer<Float>, _ ca: Int, _ b: UnsafePointer<Float>, _ cb: Int,
                                      into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            copy(ca, from: a + r * ca, to: out + r * (ca + cb))
            copy(cb, from: b + r * cb, to: out + r * (ca + cb) + ca)
        }
    }

    /// The inverse of `concatChannels` (the gradient's split): a's and b's parts of each row.
    public static func splitChannels(rows: Int, _ x: UnsafePointer<Float>, _ ca: Int, _ cb: Int, a: UnsafeMutablePointer<Float>,
                                     b: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            copy(ca, from: x + r * (ca + cb), to: a + r * ca)
            copy(cb, from: x + r * (ca + cb) + ca, to: b + r * cb)
        }
    }

    /// dst row k = src row indices[k] (rows of `length` floats).
    public static func gatherRows(_ src: UnsafePointer<Float>, length: Int, indices: [Int], into dst: UnsafeMutablePointer<Float>) {
        for (k, i) in indices.enumerated() { copy(length, from: src + i * length, to: dst + k * length) }
    }

    /// dst row indices[k] = src row k.
    public static func scatterRows(_ src: UnsafePointer<Float>, length: Int, indices: [Int], into dst: UnsafeMutablePointer<Float>) {
        for (k, i) in indices.enumerated() { copy(length, from: src + k * length, to: dst + i * length) }
    }

    /// dst row indices[k] += src row k (the gradient of a gather).
    public static func scatterAddRows(_ src: UnsafePointer<Float>, length: Int, indices: [Int], into dst: UnsafeMutablePointer<Float>) {
        for (k, i) in indices.enumerated() { MoLATensor.add(length, from: src + k * length, to: dst + i * length) }
    }
}
