import MoLASupport
/// The low-rank adapter update of a weight matrix W (K×N, a convolution's im2col weights):
/// W' = W + scale·A·B with A K×r and B r×N, scale = alpha / r.
///
/// This is the factorised form of a convolution adapter (a k×k convolution down to r
/// channels, then a 1×1 convolution up to N): a rank-r update of W. MoLA-Grad merges it
/// into one weight per task group and runs a single convolution, so these passes run
/// several times per layer and step. They are memory-bound (one pass over K×N floats, r
/// multiply-adds per element), so each is a single pass over the rows of W, split between
/// threads — not a GEMM, whose rank-r inner dimension would leave it writing C r times.
public enum LowRank {
    typealias V = SIMD8<Float>

    /// out = w + scale·a·b (out may alias w): per element, x = Σ_j a[p,j]·b[j,c] (fused,
    /// in j order), then w + scale·x.
    public static func merge(k: Int, n: Int, rank r: Int, scale: Float, w: UnsafePointer<Float>, a: UnsafePointer<Float>,
                             b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        let threads = engine.threads
        Parallel.forRanges(k, threads: threads, minPerThread: max(1, (1 << 15) / max(1, n))) { rows in
            for p in rows { mergeRow(n: n, rank: r, scale: scale, w: w + p * n, a: a + p * r, b: b, ldb: n, into: out + p * n) }
        }
    }

    /// One row of the merge: out[c] = w[c] + scale·Σ_j a[j]·b[j·ldb + c] for c < n.
    @inline(__always)
    static func mergeRow(n: Int, rank r: Int, scale: Float, w: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                         ldb: Int, into out: UnsafeMutablePointer<Float>) {
        let sv = V(repeating: scale)
        var c = 0
        while c + 8 <= n {
            var x = V()
            for j in 0..<r { x = x.addingProduct(V(repeating: a[j]), load(b + j * ldb + c)) }
            store(out + c, load(w + c).addingProduct(sv, x))
            c += 8
        }
        while c < n {
            var x: Float = 0
            for j in 0..<r { x = x.addingProduct(a[j], b[j * ldb + c]) }
            out[c] = w[c].addingProduct(scale, x)
            c += 1
        }
    }

    /// From the gradient dW' of the merged weight, in one pass over its rows:
    /// dA += scale·dW'·Bᵀ, dB += scale·Aᵀ·dW', and dW += dW' when `dW` is given (W's own
    /// gradient is dW' itself). Threads take row ranges; their dB partials are added in
    /// thread order, so results are fixed for a thread count.
    public static func backward(k: Int, n: Int, rank r: Int, scale: Float, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                dMerged: UnsafePointer<Float>, dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>,
                                dW: UnsafeMutablePointer<Float>? = nil, engine: Engine = .default) {
        let threads = engine.threads
        let parts = max(1, min(threads, k * n / (1 << 15)))
        let partials = Scratch.floats(parts * r * n, slot: ScratchSlot.lowRank)
        Parallel.run(parts) { t in
            let db = partials + t * r * n
            db.update(repeating: 0, count: r * n)
            for p in Parallel.range(of: t, parts: parts, count: k) {
                let dm = dMerged + p * n, ap = a + p * r
                for j in 0..<r {
                    // dA[p,j]: the dot of dW' row p with B row j.
                    let bj = b + j * n, dbj = db + j * n
                    let apj = V(repeating: ap[j])
                    var acc = V()
                    var c = 0
                    while c + 8 <= n {
                        let g = load(dm + c)
                        acc = acc.addingProduct(g, load(bj + c))
                        store(dbj + c, load(dbj + c).addingProduct(apj, g))
                        c += 8
                    }
                    var dot = acc.sum()
                    while c < n { dot = dot.addingProduct(dm[c], bj[c]); dbj[c] = dbj[c].addingProduct(ap[j], dm[c]); c += 1 }
                    dA[p * r + j] = dA[p * r + j].addingProduct(scale, dot)
                }
                if let dW { add(n, from: dm, to: dW + p * n) }
            }
        }
        for t in 0..<parts {
            let db = partials + t * r * n
            for i in 0..<(r * n) { dB[i] = dB[i].addingProduct(scale, db[i]) }
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ p: UnsafeMutablePointer<Float>, _ v: V) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
}
