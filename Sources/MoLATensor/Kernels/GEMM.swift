import MoLASupport
/// Matrix products on the 5×16 micro-kernel, BLIS-style: B is packed into 16-column panels
/// (L1-sized) and blocks (L2-sized); A is read in place, rows or (transposed) columns; the
/// rows of C are split between threads.
public enum GEMM {
    static let kBlock = 256   // rows of B per packed block: a 16-wide panel is 16 KiB (L1)
    static let nBlock = 512   // columns per packed block: 512 KiB of B (L2)
    static let mBlock = 100   // rows of C swept by one B panel while it sits in L1

    /// C[m×n] = alpha·op(A)·op(B) + beta·C, all row-major with leading dimensions
    /// lda/ldb/ldc; op transposes when asked (A is then stored k×m, B n×k).
    /// Deterministic: each element of C is summed in the same order whatever the threads.
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             engine: Engine = .default) {
        let threads = engine.threads
        guard m > 0, n > 0 else { return }
        if beta != 1 && (beta != 0 || k == 0) {
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
        }
        guard k > 0 else { return }
        let (rowStride, kStride) = transA ? (1, lda) : (lda, 1)
        // Few output tiles and a long reduction (weight gradients): each thread takes a
        // slice of k into its own C; the slices are then summed in thread order.
        let tiles = ((m + MicroKernel.rows - 1) / MicroKernel.rows) * ((n + 15) / 16)
        if threads > 1 && tiles < 8 * threads && k >= 2 * kBlock * threads {
            splitK(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc, engine: engine)
            return
        }
        // A narrow B (conv weights: ≤ 128 columns) is small enough to take whole in k: no
        // extra passes over C for a short last block.
        let depth = n <= 128 ? max(kBlock, min(k, 4 * kBlock)) : kBlock
        var jc = 0
        while jc < n {
            let nc = min(nBlock, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(depth, k - pc)
                let packed = PackedPanels(b: transB ? b + jc * ldb + pc : b + pc * ldb + jc, ldb: ldb,
                                          transposed: transB, k: kc, n: nc, threads: threads)
                multiply(m: m, a: a + pc * kStride, rowStride: rowStride, kStride: kStride, packed: packed,
                         c: c + jc, ldc: ldc, alpha: alpha, accumulate: pc > 0 || beta != 0, engine: engine)
                pc += kc
            }
            jc += nc
        }
    }

    static func splitK(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                       a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                       beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, engine: Engine) {
        let threads = engine.threads
        let partials = Scratch.floats(threads * m * n, slot: ScratchSlot.splitK)
        let blocks = (k + kBlock - 1) / kBlock
        Parallel.run(threads) { t in
            let r = Parallel.range(of: t, parts: threads, count: blocks)
            let lo = r.lowerBound * kBlock, hi = min(k, r.upperBound * kBlock)
            let pa = transA ? a + lo * lda : a + lo, pb = transB ? b + lo : b + lo * ldb
            sgemm(transA: transA, transB: transB, m: m, n: n, k: hi - lo, alpha: alpha, a: pa, lda: lda, b: pb, ldb: ldb,
                  beta: 0, c: partials + t * m * n, ldc: n, engine: engine.threads(1))
        }
        for i in 0..<m {
            let row = c + i * ldc
            for j in 0..<n {
                var s = beta == 0 ? 0 : beta * row[j]
                for t in 0..<threads { s += partials[t * m * n + i * n + j] }
                row[j] = s
            }
        }
    }

    /// C[m×packed.n] (+)= alpha·A·B for B already packed, the rows of C split between
    /// threads in multiples of 5 (or the panels, when there are too few rows).
    static func multiply(m: Int, a: UnsafePointer<Float>, rowStride: Int, kStride: Int, packed: PackedPanels,
                         c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool, engine: Engine) {
        let threads = engine.threads
        let r = MicroKernel.rows
        let tiles = (m + r - 1) / r
        if tiles >= 2 * threads || packed.panels < threads {
            Parallel.forRanges(tiles, threads: threads) { part in
                multiplyRows(part.lowerBound * r..<min(m, part.upperBound * r), panels: 0..<packed.panels, a: a,
                             rowStride: rowStride, kStride: kStride, packed: packed, c: c, ldc: ldc, alpha: alpha, accumulate: accumulate, wide: engine.wideKernels)
            }
        } else {
            Parallel.forRanges(packed.panels, threads: threads) { part in
                multiplyRows(0..<m, panels: part, a: a, rowStride: rowStride, kStride: kStride, packed: packed,
                             c: c, ldc: ldc, alpha: alpha, accumulate: accumulate, wide: engine.wideKernels)
            }
        }
    }

    /// One thread's share: rows `rows` of C against panels `panels`, `mBlock` rows per
    /// sweep of each panel.
    static func multiplyRows(_ rows: Range<Int>, panels: Range<Int>, a: UnsafePointer<Float>, rowStride: Int, kStride: Int,
                             packed: PackedPanels, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool, wide: Bool) {
        let k = packed.k, r = MicroKernel.rows
        var ic = rows.lowerBound
        while ic < rows.upperBound {
            let icEnd = min(rows.upperBound, ic + mBlock)
            var j = panels.lowerBound
            while j < panels.upperBound {
                // With AVX-512, four or two full panels at a time (5×64, 5×32 tiles), or one
                // panel ten rows at a time: enough accumulators to hide the FMA latency.
                func full(_ g: Int) -> Bool { j + g <= panels.upperBound && (j + g) * 16 <= packed.n }
                let group = wide && full(4) ? 4 : wide && full(2) ? 2 : 1
                let bp = packed.panel(j)
                let n = min(16, packed.n - j * 16)
                var i = ic
                while i < icEnd {
                    let m = min(r, icEnd - i)
                    let ai = a + i * rowStride, ci = c + i * ldc + j * 16
                    if wide && group == 1 && n == 16 && i + 2 * r <= icEnd {
                        MicroKernel.tile10(k, ai, rowStride, kStride, bp, ci, ldc, alpha, accumulate, wide: wide)
                        i += 2 * r
                        continue
                    }
                    if m == r && n == 16 {
                        MicroKernel.tile(k, ai, rowStride, kStride, bp, panels: group, ci, ldc, alpha, accumulate, wide: wide)
                    } else if n == 16 {
                        MicroKernel.shortTile(k, m, ai, rowStride, kStride, bp, panels: group, ci, ldc, alpha, accumulate, wide: wide)
                    } else {
                        for g in 0..<group {
                            MicroKernel.edge(k, m, n, ai, rowStride, kStride, packed.panel(j + g), ci + g * 16, ldc, alpha, accumulate, wide: wide)
                        }
                    }
                    i += r
                }
                j += group
            }
            ic = icEnd
        }
    }
}

/// B (k×n) packed as ⌈n/16⌉ panels of k rows × 16 columns, zero-padded, 64-byte aligned:
/// the layout the micro-kernel streams.
struct PackedPanels {
    let k: Int
    let n: Int
    let panels: Int
    let storage: UnsafeMutablePointer<Float>

    /// Empty panels for a k×n matrix in the calling thread's scratch slot.
    private init(k: Int, n: Int, slot: Int) {
        self.init(k: k, n: n, storage: Scratch.floats(((n + 15) / 16) * k * 16, slot: slot))
    }

    /// Panels for a k×n matrix at `storage` (⌈n/16⌉·k·16 floats), filled by the caller.
    init(k: Int, n: Int, storage: UnsafeMutablePointer<Float>) {
        self.k = k
        self.n = n
        panels = (n + 15) / 16
        self.storage = storage
    }

    /// Packs B[p][j] = b[p·ldb + j] (or b[j·ldb + p] when `transposed`) into the calling
    /// thread's scratch slot (valid until that thread packs again).
    init(b: UnsafePointer<Float>, ldb: Int, transposed: Bool, k: Int, n: Int, slot: Int = ScratchSlot.packedB, threads: Int = 1) {
        self.init(k: k, n: n, slot: slot)
        let storage = self.storage
        // Large blocks are packed by all threads (the others would wait otherwise).
        let parts = k * n >= 1 << 16 ? threads : 1
        Parallel.forRanges(panels, threads: parts) { range in
            Self.pack(b: b, ldb: ldb, transposed: transposed, k: k, n: n, panels: range, into: storage)
        }
    }

    /// Packs a convolution's weights (`weights.w` is patch × C_out, row-major) as B of the
    /// forward product (k = patch, n = C_out) or, `transposed`, of the input gradient
    /// (k = C_out, n = patch). An adapter in `weights` is merged as the values are packed:
    /// no merged copy of W is written and read again.
    init(_ weights: ConvWeights, patch: Int, outChannels: Int, transposed: Bool, threads: Int) {
        let (k, n) = transposed ? (outChannels, patch) : (patch, outChannels)
        guard let low = weights.lowRank else {
            self.init(b: weights.w, ldb: outChannels, transposed: transposed, k: k, n: n, threads: threads)
            return
        }
        self.init(k: k, n: n, slot: ScratchSlot.packedB)
        let storage = self.storage
        let parts = k * n >= 1 << 16 ? threads : 1
        Parallel.forRanges(panels, threads: parts) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(16, outChannels)) { rowBuffer in
                let row = rowBuffer.baseAddress!
                for j in range {
                    let dst = storage + j * k * 16
                    let cols = min(16, n - j * 16)
                    if transposed {
                        // Panel j holds patch rows j·16…: each merged row of W becomes a column.
                        if cols < 16 { dst.update(repeating: 0, count: k * 16) }
                        for jj in 0..<cols {
                            let p = j * 16 + jj
                            LowRank.mergeRow(n: outChannels, rank: low.rank, scale: low.scale, w: weights.w + p * outChannels,
                                             a: low.a + p * low.rank, b: low.b, ldb: outChannels, into: row)
                            for o in 0..<outChannels { dst[o * 16 + jj] = row[o] }
                        }
                    } else {
                        for p in 0..<k {
                            let d = dst + p * 16
                            if cols < 16 { d.update(repeating: 0, count: 16) }
                            LowRank.mergeRow(n: cols, rank: low.rank, scale: low.scale, w: weights.w + p * outChannels + j * 16,
                                             a: low.a + p * low.rank, b: low.b + j * 16, ldb: outChannels, into: d)
                        }
                    }
                }
            }
        }
    }

    static func pack(b: UnsafePointer<Float>, ldb: Int, transposed: Bool, k: Int, n: Int, panels: Range<Int>,
                     into storage: UnsafeMutablePointer<Float>) {
        for j in panels {
            let dst = storage + j * k * 16
            let cols = min(16, n - j * 16)
            if transposed {
                if cols < 16 { dst.update(repeating: 0, count: k * 16) }
                for jj in 0..<cols {
                    let src = b + (j * 16 + jj) * ldb
                    for p in 0..<k { dst[p * 16 + jj] = src[p] }
                }
            } else {
                for p in 0..<k {
                    let src = b + p * ldb + j * 16, d = dst + p * 16
                    if cols == 16 {
                        UnsafeMutableRawPointer(d).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                    } else {
                        for jj in 0..<16 { d[jj] = jj < cols ? src[jj] : 0 }
                    }
                }
            }
        }
    }

    func panel(_ j: Int) -> UnsafePointer<Float> { UnsafePointer(storage + j * k * 16) }
}
