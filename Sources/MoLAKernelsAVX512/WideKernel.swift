/// The micro-kernel's AVX-512 form, compiled for AVX-512 (see Package.swift) and called
/// only when the CPU has it (`MoLATensor.CPU`). On cores with full-width 512-bit FMA units
/// (AMD Zen 5, Intel server cores) this doubles the arithmetic rate of the AVX2 kernel:
/// measured here, a bare FMA loop runs at 113 GFLOP/s per core with AVX2 and 245 with
/// AVX-512.
///
/// Same contract as the AVX2 kernel: C (5 rows × 16·panels columns) = alpha·A·B, or +=
/// with `accumulate`; A read in place (element (r, p) at `a[r·rowStride + p·kStride]`), B
/// as packed 16-column panels `panelStride` floats apart. Each element of C is summed over
/// k in the same order as the AVX2 kernel, so both give identical bits.
#if arch(x86_64)
public enum WideKernel {
    typealias V = SIMD16<Float>

    /// Five rows by four panels (64 columns): 20 accumulators of the 32 vector registers;
    /// per step of k, 4 loads of B and 5 broadcasts of A feed 20 fused multiply-adds.
    @inline(never)
    public static func tile5x64(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                                _ panelStride: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool) {
        var c00 = V(), c01 = V(), c02 = V(), c03 = V()
        var c10 = V(), c11 = V(), c12 = V(), c13 = V()
        var c20 = V(), c21 = V(), c22 = V(), c23 = V()
        var c30 = V(), c31 = V(), c32 = V(), c33 = V()
        var c40 = V(), c41 = V(), c42 = V(), c43 = V()
        let a0 = a, a1 = a0 + rowStride, a2 = a1 + rowStride, a3 = a2 + rowStride, a4 = a3 + rowStride
        var p0 = UnsafeRawPointer(b)
        let d1 = panelStride * 4, d2 = 2 * d1, d3 = 3 * d1
        var off = 0
        for _ in 0..<k {
            let b0 = p0.load(as: V.self), b1 = p0.load(fromByteOffset: d1, as: V.self)
            let b2 = p0.load(fromByteOffset: d2, as: V.self), b3 = p0.load(fromByteOffset: d3, as: V.self)
            var s = V(repeating: a0[off])
            c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1); c02 = c02.addingProduct(s, b2); c03 = c03.addingProduct(s, b3)
            s = V(repeating: a1[off])
            c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1); c12 = c12.addingProduct(s, b2); c13 = c13.addingProduct(s, b3)
            s = V(repeating: a2[off])
            c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1); c22 = c22.addingProduct(s, b2); c23 = c23.addingProduct(s, b3)
            s = V(repeating: a3[off])
            c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1); c32 = c32.addingProduct(s, b2); c33 = c33.addingProduct(s, b3)
            s = V(repeating: a4[off])
            c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1); c42 = c42.addingProduct(s, b2); c43 = c43.addingProduct(s, b3)
            off += kStride
            p0 += 64
        }
        let al = V(repeating: alpha)
        @inline(__always) func put(_ row: Int, _ x0: V, _ x1: V, _ x2: V, _ x3: V) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            store(p, 0, x0, al, accumulate); store(p, 64, x1, al, accumulate)
            store(p, 128, x2, al, accumulate); store(p, 192, x3, al, accumulate)
        }
        put(0, c00, c01, c02, c03); put(1, c10, c11, c12, c13); put(2, c20, c21, c22, c23)
        put(3, c30, c31, c32, c33); put(4, c40, c41, c42, c43)
    }

    /// Five rows by two panels (32 columns): 10 accumulators, enough independent FMA chains
    /// to cover the FMA latency where C has only 32 columns (resnet-mini's middle stage).
    @inline(never)
    public static func tile5x32(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                                _ panelStride: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V(), c40 = V(), c41 = V()
        let a0 = a, a1 = a0 + rowStride, a2 = a1 + rowStride, a3 = a2 + rowStride, a4 = a3 + rowStride
        var p0 = UnsafeRawPointer(b)
        let d1 = panelStride * 4
        var off = 0
        for _ in 0..<k {
            let b0 = p0.load(as: V.self), b1 = p0.load(fromByteOffset: d1, as: V.self)
            var s = V(repeating: a0[off]); c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1)
            s = V(repeating: a1[off]); c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1)
            s = V(repeating: a2[off]); c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1)
            s = V(repeating: a3[off]); c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1)
            s = V(repeating: a4[off]); c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1)
            off += kStride
            p0 += 64
        }
        let al = V(repeating: alpha)
        @inline(__always) func put(_ row: Int, _ x0: V, _ x1: V) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            store(p, 0, x0, al, accumulate); store(p, 64, x1, al, accumulate)
        }
        put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31); put(4, c40, c41)
    }

    /// Ten rows (two 5-row tiles) by one panel: 10 accumulators for C of 16 columns.
    @inline(never)
    public static func tile10x16(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                                 _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool) {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V(), c8 = V(), c9 = V()
        let a0 = a, a1 = a0 + rowStride, a2 = a1 + rowStride, a3 = a2 + rowStride, a4 = a3 + rowStride
        let a5 = a4 + rowStride, a6 = a5 + rowStride, a7 = a6 + rowStride, a8 = a7 + rowStride, a9 = a8 + rowStride
        var bp = UnsafeRawPointer(b)
        var off = 0
        for _ in 0..<k {
            let b0 = bp.load(as: V.self)
            c0 = c0.addingProduct(V(repeating: a0[off]), b0); c1 = c1.addingProduct(V(repeating: a1[off]), b0)
            c2 = c2.addingProduct(V(repeating: a2[off]), b0); c3 = c3.addingProduct(V(repeating: a3[off]), b0)
            c4 = c4.addingProduct(V(repeating: a4[off]), b0); c5 = c5.addingProduct(V(repeating: a5[off]), b0)
            c6 = c6.addingProduct(V(repeating: a6[off]), b0); c7 = c7.addingProduct(V(repeating: a7[off]), b0)
            c8 = c8.addingProduct(V(repeating: a8[off]), b0); c9 = c9.addingProduct(V(repeating: a9[off]), b0)
            off += kStride
            bp += 64
        }
        let al = V(repeating: alpha)
        for (row, x) in [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9].enumerated() {
            store(UnsafeMutableRawPointer(c + row * ldc), 0, x, al, accumulate)
        }
    }

    /// Five rows by one panel (16 columns), for the panels left over after groups of four.
    @inline(never)
    public static func tile5x16(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                                _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool) {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V()
        let a0 = a, a1 = a0 + rowStride, a2 = a1 + rowStride, a3 = a2 + rowStride, a4 = a3 + rowStride
        var bp = UnsafeRawPointer(b)
        var off = 0
        for _ in 0..<k {
            let b0 = bp.load(as: V.self)
            c0 = c0.addingProduct(V(repeating: a0[off]), b0)
            c1 = c1.addingProduct(V(repeating: a1[off]), b0)
            c2 = c2.addingProduct(V(repeating: a2[off]), b0)
            c3 = c3.addingProduct(V(repeating: a3[off]), b0)
            c4 = c4.addingProduct(V(repeating: a4[off]), b0)
            off += kStride
            bp += 64
        }
        let al = V(repeating: alpha)
        store(UnsafeMutableRawPointer(c), 0, c0, al, accumulate)
        store(UnsafeMutableRawPointer(c + ldc), 0, c1, al, accumulate)
        store(UnsafeMutableRawPointer(c + 2 * ldc), 0, c2, al, accumulate)
        store(UnsafeMutableRawPointer(c + 3 * ldc), 0, c3, al, accumulate)
        store(UnsafeMutableRawPointer(c + 4 * ldc), 0, c4, al, accumulate)
    }

    /// c = alpha·x, or c += alpha·x — the AVX2 kernel's rounding (one FMA or one multiply).
    @inline(__always)
    static func store(_ p: UnsafeMutableRawPointer, _ offset: Int, _ x: V, _ alpha: V, _ accumulate: Bool) {
        if accumulate {
            p.storeBytes(of: p.loadUnaligned(fromByteOffset: offset, as: V.self).addingProduct(alpha, x), toByteOffset: offset, as: V.self)
        } else {
            p.storeBytes(of: alpha * x, toByteOffset: offset, as: V.self)
        }
    }
}
#endif
