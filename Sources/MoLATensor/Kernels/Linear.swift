import MoLASupport
/// A fully connected layer y = x·W + b, with W stored in×out (the GEMM's B as is).
public enum Linear {
    public static func forward(rows: Int, inputs: Int, outputs: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                               b: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        GEMM.sgemm(m: rows, n: outputs, k: inputs, a: x, lda: inputs, b: w, ldb: outputs, c: y, ldc: outputs, engine: engine)
        if let b { for r in 0..<rows { add(outputs, from: b, to: y + r * outputs) } }
    }

    /// dx = dy·Wᵀ (overwritten, when given); dW += xᵀ·dy; db += Σ rows of dy.
    public static func backward(rows: Int, inputs: Int, outputs: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>,
                                db: UnsafeMutablePointer<Float>?, engine: Engine = .default) {
        if let dx {
            GEMM.sgemm(transB: true, m: rows, n: inputs, k: outputs, a: dy, lda: outputs, b: w, ldb: outputs,
                       c: dx, ldc: inputs, engine: engine)
        }
        GEMM.sgemm(transA: true, m: inputs, n: outputs, k: rows, a: x, lda: inputs, b: dy, ldb: outputs,
                   beta: 1, c: dw, ldc: outputs, engine: engine)
        if let db { for r in 0..<rows { add(outputs, from: dy + r * outputs, to: db) } }
    }
}
