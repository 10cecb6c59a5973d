/// The low-rank adapter update of a weight matrix W (K×N, a convolution's im2col weights):
/// W' = W + scale·A·B with A K×r and B r×N, scale = alpha / r.
///
/// This is the factorised form of a convolution adapter (a k×k convolution down to r
/// channels, then a 1×1 convolution up to N): a rank-r update of W. Merging it into one
/// weight and running a single convolution costs K·N·r multiply-adds, nothing next to the
/// convolution; gradients come from dW' alone.
public enum LowRank {
    /// out = w + scale·a·b (out may alias w).
    public static func merge(k: Int, n: Int, rank r: Int, scale: Float, w: UnsafePointer<Float>, a: UnsafePointer<Float>,
                             b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        if out != UnsafeMutablePointer(mutating: w) { out.update(from: w, count: k * n) }
        GEMM.sgemm(m: k, n: n, k: r, alpha: scale, a: a, lda: r, b: b, ldb: n, beta: 1, c: out, ldc: n, threads: 1)
    }

    /// From the gradient dW' of the merged weight: dA += scale·dW'·Bᵀ, dB += scale·Aᵀ·dW'.
    /// (W's own gradient is dW' itself.)
    public static func backward(k: Int, n: Int, rank r: Int, scale: Float, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                dMerged: UnsafePointer<Float>, dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>) {
        GEMM.sgemm(transB: true, m: k, n: r, k: n, alpha: scale, a: dMerged, lda: n, b: b, ldb: n, beta: 1, c: dA, ldc: r, threads: 1)
        GEMM.sgemm(transA: true, m: r, n: n, k: k, alpha: scale, a: a, lda: r, b: dMerged, ldb: n, beta: 1, c: dB, ldc: n, threads: 1)
    }
}
