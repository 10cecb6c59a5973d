#if arch(x86_64)
import MoLAKernelsAVX512
#endif

/// The inner loop every matrix product runs through: a 5×16 tile of C in ten `SIMD8<Float>`
/// accumulators, 2 loads of B and 5 broadcasts of A per step of k, 10 fused multiply-adds.
///
/// A is read in place: element (r, p) is `a[r·rowStride + p·kStride]`, so row-major rows
/// (kStride 1) and a transposed operand (rowStride 1) need no copy. Measured on this
/// machine's AVX2 cores (16 vector registers): this shape runs at the FMA peak (~85
/// GFLOP/s per core) for both strides; a 6-row tile read this way spills accumulators
/// (LLVM hoists all six broadcasts) and runs at half speed. B is a packed panel of 16
/// floats per step of k, 64-byte aligned.
enum MicroKernel {
    static let rows = 5
    static let cols = 16

    /// C[5 × 16·panels] (+)= alpha·A·B for `panels` (1, or 2 or 4 with AVX-512) consecutive full
    /// panels of B: the AVX-512 kernel when `wide` (`Engine.wideKernels`), this file's otherwise.
    @inline(__always)
    static func tile(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>, panels: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool, wide: Bool) {
        #if arch(x86_64)
        if wide {
            switch panels {
            case 4: WideKernel.tile5x64(k, a, rowStride, kStride, b, k * cols, c, ldc, alpha, accumulate)
            case 2: WideKernel.tile5x32(k, a, rowStride, kStride, b, k * cols, c, ldc, alpha, accumulate)
            default: WideKernel.tile5x16(k, a, rowStride, kStride, b, c, ldc, alpha, accumulate)
            }
            return
        }
        #endif
        for p in 0..<panels { tile(k, a, rowStride, kStride, b + p * k * cols, c + p * cols, ldc, alpha, accumulate) }
    }

    /// Fewer than 5 rows (m) by `panels` full panels: A's m rows are copied into a zeroed
    /// 5-row strip so the full tile runs (a transposed product with C_in = 64 rows ends
    /// in a 4-row strip on every block: at one row at a time it cost a third of the time).
    static func shortTile(_ k: Int, _ m: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                          panels: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool, wide: Bool) {
        let strip = Scratch.floats(k * rows, slot: ScratchSlot.shortRows)
        for p in 0..<k {
            for r in 0..<rows { strip[p * rows + r] = r < m ? a[r * rowStride + p * kStride] : 0 }
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * cols * panels) { scratch in
            let t = scratch.baseAddress!
            tile(k, strip, 1, rows, b, panels: panels, t, cols * panels, alpha, false, wide: wide)
            for r in 0..<m {
                let cr = c + r * ldc, tr = t + r * cols * panels
                if accumulate { for j in 0..<(cols * panels) { cr[j] += tr[j] } } else { for j in 0..<(cols * panels) { cr[j] = tr[j] } }
            }
        }
    }

    /// Ten rows (two 5-row tiles) by one full panel.
    @inline(__always)
    static func tile10(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool, wide: Bool) {
        #if arch(x86_64)
        if wide { WideKernel.tile10x16(k, a, rowStride, kStride, b, c, ldc, alpha, accumulate); return }
        #endif
        tile(k, a, rowStride, kStride, b, c, ldc, alpha, accumulate)
        tile(k, a + rows * rowStride, rowStride, kStride, b, c + rows * ldc, ldc, alpha, accumulate)
    }

    /// C[5×16] = alpha·(A·B) (`accumulate` false) or C += alpha·(A·B) (true); C has row
    /// stride `ldc`. All 5 rows and 16 columns must be valid (see `edge` for the rest).
    @inline(never)  // keeps register allocation local
    static func tile(_ k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int, _ b: UnsafePointer<Float>,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool) {
        typealias V = SIMD8<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V()
        let a0 = a, a1 = a0 + rowStride, a2 = a1 + rowStride, a3 = a2 + rowStride, a4 = a3 + rowStride
        var bp = UnsafeRawPointer(b)
        var off = 0
        for _ in 0..<k {
            let b0 = bp.load(as: V.self), b1 = bp.load(fromByteOffset: 32, as: V.self)
            var s = V(repeating: a0[off]); c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1)
            s = V(repeating: a1[off]); c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1)
            s = V(repeating: a2[off]); c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1)
            s = V(repeating: a3[off]); c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1)
            s = V(repeating: a4[off]); c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1)
            off += kStride
            bp += 64
        }
        let al = V(repeating: alpha)
        @inline(__always) func put(_ row: Int, _ x0: V, _ x1: V) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            if accumulate {
                p.storeBytes(of: p.loadUnaligned(as: V.self).addingProduct(al, x0), as: V.self)
                p.storeBytes(of: p.loadUnaligned(fromByteOffset: 32, as: V.self).addingProduct(al, x1), toByteOffset: 32, as: V.self)
            } else {
                p.storeBytes(of: al * x0, as: V.self)
                p.storeBytes(of: al * x1, toByteOffset: 32, as: V.self)
            }
        }
        put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31); put(4, c40, c41)
    }

    /// A tile at the matrix's edge: `m` ≤ 5 valid rows and `n` ≤ 16 valid columns. Only
    /// the valid rows of A are read; the tile goes through a scratch buffer.
    static func edge(_ k: Int, _ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ kStride: Int,
                     _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ accumulate: Bool,
                     wide: Bool) {
        typealias V = SIMD8<Float>
        withUnsafeTemporaryAllocation(of: V.self, capacity: 2 * rows) { scratch in
            let t = UnsafeMutableRawPointer(scratch.baseAddress!).assumingMemoryBound(to: Float.self)
            if m == rows {
                tile(k, a, rowStride, kStride, b, panels: 1, t, cols, alpha, false, wide: wide)
            } else {
                for r in 0..<m {
                    var x0 = V(), x1 = V()
                    var bp = UnsafeRawPointer(b)
                    let ar = a + r * rowStride
                    var off = 0
                    for _ in 0..<k {
                        let s = V(repeating: ar[off])
                        x0 = x0.addingProduct(s, bp.load(as: V.self))
                        x1 = x1.addingProduct(s, bp.load(fromByteOffset: 32, as: V.self))
                        off += kStride
                        bp += 64
                    }
                    scratch[2 * r] = x0 * alpha
                    scratch[2 * r + 1] = x1 * alpha
                }
            }
            for r in 0..<m {
                let cr = c + r * ldc, tr = t + r * cols
                if accumulate { for j in 0..<n { cr[j] += tr[j] } } else { for j in 0..<n { cr[j] = tr[j] } }
            }
        }
    }
}
