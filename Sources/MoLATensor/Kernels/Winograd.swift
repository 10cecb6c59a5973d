import Foundation
import MoLASupport

/// Winograd F(2×2, 3×3) for stride-1, padding-1 3×3 convolutions (every 3×3 conv of a
/// ResNet block but the first of a stage): each 2×2 block of output pixels comes from a
/// 4×4 block of input through 16 products per channel pair instead of 36, i.e. 2.25× fewer
/// multiplies — the way past the FMA limit that im2col·W is bound by.
///
/// With d a 4×4 input tile and g a 3×3 filter (Lavin & Gray, 2015):
///   V = Bᵀ·d·B,  U = G·g·Gᵀ,  M = Σ_c U ⊙ V (16 independent C_in × C_out products),
///   Y = Aᵀ·M·A (the 2×2 outputs).
/// The 16 products run on the GEMM micro-kernel over blocks of tiles; the transforms are
/// additions only (and halves in G), vectorised over channels. The input gradient of such
/// a convolution is the same convolution of dy with the filters flipped and C_in, C_out
/// swapped, so it runs here too; the weight gradient runs the transforms' adjoints, with
/// the tiles as the products' long reduction.
///
/// Float32 error against the direct convolution is tested on every ResNet-18 layer shape;
/// `Engine.winograd` (off with `MOLA_WINOGRAD=0`) decides whether it runs.
public enum Winograd {
    /// Whether a convolution runs here: 3×3, stride 1, padding 1, channel counts in whole
    /// SIMD8 vectors, and enough tiles to repay transforming the weights (16 C_in × C_out
    /// products): with few images per call (a small task group of a late stage) the
    /// transform costs more than it saves (measured with `mola-bench conv-layers`).
    public static func applies(_ s: ConvShape, engine: Engine) -> Bool {
        engine.winograd && s.kernel == 3 && s.stride == 1 && s.padding == 1 && s.inChannels % 8 == 0 && s.outChannels % 8 == 0
            && tiles(s) >= engine.winogradMinTiles * max(s.inChannels, s.outChannels)
    }

    static func tiles(_ s: ConvShape) -> Int { s.batch * ((s.height + 1) / 2) * ((s.width + 1) / 2) }

    /// y = conv(x, W') for W' the (merged) weights; overwrites y.
    static func forward(_ s: ConvShape, x: UnsafePointer<Float>, weights: ConvWeights, y: UnsafeMutablePointer<Float>, engine: Engine) {
        let u = transformedWeights(s, weights, inputGradient: false, engine: engine)
        convolve(s, inChannels: s.inChannels, outChannels: s.outChannels, x: x, u: u, y: y, engine: engine)
    }

    /// dx = the input gradient of conv(x, W') for dy; overwrites dx.
    static func inputGradient(_ s: ConvShape, weights: ConvWeights, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, engine: Engine) {
        let u = transformedWeights(s, weights, inputGradient: true, engine: engine)
        convolve(s, inChannels: s.outChannels, outChannels: s.inChannels, x: dy, u: u, y: dx, engine: engine)
    }

    /// U for each of the 16 positions ξ, packed as the micro-kernel's B (rows: the
    /// convolution's input channels). For the input gradient the filters are flipped and
    /// the channel roles swapped. In the calling thread's scratch.
    static func transformedWeights(_ s: ConvShape, _ weights: ConvWeights, inputGradient: Bool, engine: Engine) -> [PackedPanels] {
        let threads = engine.threads
        let (c, k) = (s.inChannels, s.outChannels)
        var w = weights.w
        if let low = weights.lowRank {
            let merged = Scratch.floats(s.weightCount, slot: ScratchSlot.mergedWeights)
            LowRank.merge(k: s.patch, n: k, rank: low.rank, scale: low.scale, w: w, a: low.a, b: low.b, into: merged, engine: engine)
            w = UnsafePointer(merged)
        }
        let (rows, cols) = inputGradient ? (k, c) : (c, k)
        let panels = (cols + 15) / 16
        let storage = Scratch.floats(16 * panels * rows * 16, slot: ScratchSlot.winogradWeights)
        let packed = (0..<16).map { PackedPanels(k: rows, n: cols, storage: storage + $0 * panels * rows * 16) }
        let weightsPointer = w
        Parallel.forRanges(rows, threads: threads, minPerThread: 8) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * cols) { out in
                let u = out.baseAddress!
                for row in range {
                    for col in 0..<cols {
                        // g[ky][kx] for (row, col): forward g_{c=row,k=col}; input gradient the
                        // flipped g_{c=col,k=row}[2−ky][2−kx].
                        @inline(__always) func g(_ ky: Int, _ kx: Int) -> Float {
                            inputGradient ? weightsPointer[((2 - ky) * 3 + (2 - kx)) * c * k + col * k + row]
                                : weightsPointer[(ky * 3 + kx) * c * k + row * k + col]
                        }
                        // G·g (4×3, column by column), then ·Gᵀ row by row.
                        for i in 0..<4 {
                            @inline(__always) func t(_ kx: Int) -> Float {
                                switch i {
                                case 0: return g(0, kx)
                                case 1: return 0.5 * (g(0, kx) + g(1, kx) + g(2, kx))
                                case 2: return 0.5 * (g(0, kx) - g(1, kx) + g(2, kx))
                                default: return g(2, kx)
                                }
                            }
                            let (t0, t1, t2) = (t(0), t(1), t(2))
                            u[(i * 4 + 0) * cols + col] = t0
                            u[(i * 4 + 1) * cols + col] = 0.5 * (t0 + t1 + t2)
                            u[(i * 4 + 2) * cols + col] = 0.5 * (t0 - t1 + t2)
                            u[(i * 4 + 3) * cols + col] = t2
                        }
                    }
                    for xi in 0..<16 {
                        let p = packed[xi]
                        for j in 0..<panels {
                            let dst = p.storage + j * rows * 16 + row * 16
                            let n = min(16, cols - j * 16)
                            for jj in 0..<16 { dst[jj] = jj < n ? u[xi * cols + j * 16 + jj] : 0 }
                        }
                    }
                }
            }
        }
        return packed
    }

    /// Tiles per block: the 16 transformed input rows and products of a block stay near
    /// L2 (~1 MiB each), at least 100 rows so each packed B panel is reused long enough.
    static func blockTiles(_ channels: Int) -> Int {
        max(100, (1 << 20) / (64 * channels) / MicroKernel.rows * MicroKernel.rows)
    }

    /// y (outChannels) = the Winograd convolution of x (inChannels) with transformed
    /// filters u. Threads take contiguous ranges of 2×2 output tiles.
    static func convolve(_ s: ConvShape, inChannels c: Int, outChannels k: Int, x: UnsafePointer<Float>, u: [PackedPanels],
                         y: UnsafeMutablePointer<Float>, engine: Engine) {
        let threads = engine.threads
        let (h, w) = (s.height, s.width)
        let (th, tw) = ((h + 1) / 2, (w + 1) / 2)
        let total = s.batch * th * tw
        let block = blockTiles(max(c, k))
        Parallel.forRanges(total, threads: threads, minPerThread: MicroKernel.rows) { range in
            let v = Scratch.floats(16 * block * c, slot: ScratchSlot.im2col)
            let m = Scratch.floats(16 * block * k, slot: ScratchSlot.columnGradient)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let nb = min(block, range.upperBound - t0)
                transformInput(x: x, h: h, w: w, c: c, th: th, tw: tw, tiles: t0..<(t0 + nb), block: block, into: v)
                for xi in 0..<16 {
                    GEMM.multiplyRows(0..<nb, panels: 0..<u[xi].panels, a: v + xi * block * c, rowStride: c, kStride: 1,
                                      packed: u[xi], c: m + xi * block * k, ldc: k, alpha: 1, accumulate: false, wide: engine.wideKernels)
                }
                transformOutput(m, h: h, w: w, k: k, th: th, tw: tw, tiles: t0..<(t0 + nb), block: block, into: y)
                t0 += nb
            }
        }
    }

    /// dw += (dw = … when not `accumulate`) the weight gradient through the transformed
    /// domain: per tile dM = A·dy·Aᵀ (the output transform's adjoint), dU_ξ = Σ_tiles
    /// V_ξᵀ·dM_ξ (16 products with the tiles as the long reduction), dW = Gᵀ·dU·G. Threads
    /// take tile ranges into private dU partials, added in thread order.
    static func weightGradient(_ s: ConvShape, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                               accumulate: Bool, engine: Engine) {
        let threads = engine.threads
        let (c, k, h, w) = (s.inChannels, s.outChannels, s.height, s.width)
        let (th, tw) = ((h + 1) / 2, (w + 1) / 2)
        let total = s.batch * th * tw
        let block = blockTiles(max(c, k))
        let parts = max(1, min(threads, total / MicroKernel.rows))
        let size = 16 * c * k
        let partials = Scratch.floats(parts * size, slot: ScratchSlot.winogradPartials)
        Parallel.run(parts) { t in
            let range = Parallel.range(of: t, parts: parts, count: total)
            let du = partials + t * size
            let v = Scratch.floats(16 * block * c, slot: ScratchSlot.im2col)
            let dm = Scratch.floats(16 * block * k, slot: ScratchSlot.columnGradient)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let nb = min(block, range.upperBound - t0)
                transformInput(x: x, h: h, w: w, c: c, th: th, tw: tw, tiles: t0..<(t0 + nb), block: block, into: v)
                transformGradient(dy, h: h, w: w, k: k, th: th, tw: tw, tiles: t0..<(t0 + nb), block: block, into: dm)
                for xi in 0..<16 {
                    let packed = PackedPanels(b: dm + xi * block * k, ldb: k, transposed: false, k: nb, n: k, slot: ScratchSlot.packedChunk)
                    GEMM.multiplyRows(0..<c, panels: 0..<packed.panels, a: v + xi * block * c, rowStride: 1, kStride: c,
                                      packed: packed, c: du + xi * c * k, ldc: k, alpha: 1, accumulate: t0 != range.lowerBound, wide: engine.wideKernels)
                }
                t0 += nb
            }
        }
        // dU = Σ partials (thread order), then dW = Gᵀ·dU·G, split over input channels.
        Parallel.forRanges(c, threads: threads) { channels in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { u in
                for ci in channels {
                    for ko in 0..<k {
                        for xi in 0..<16 {
                            var sum = partials[xi * c * k + ci * k + ko]
                            for t in 1..<max(1, parts) { sum += partials[t * size + xi * c * k + ci * k + ko] }
                            u[xi] = sum
                        }
                        // Gᵀ·dU (3×4), then ·G (3×3). Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
                        for ky in 0..<3 {
                            @inline(__always) func r(_ j: Int) -> Float {
                                switch ky {
                                case 0: return u[j] + 0.5 * (u[4 + j] + u[8 + j])
                                case 1: return 0.5 * (u[4 + j] - u[8 + j])
                                default: return 0.5 * (u[4 + j] + u[8 + j]) + u[12 + j]
                                }
                            }
                            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3))
                            let g = (r0 + 0.5 * (r1 + r2), 0.5 * (r1 - r2), 0.5 * (r1 + r2) + r3)
                            let base = dw + (ky * 3) * c * k + ci * k + ko
                            if accumulate {
                                base[0] += g.0; base[c * k] += g.1; base[2 * c * k] += g.2
                            } else {
                                base[0] = g.0; base[c * k] = g.1; base[2 * c * k] = g.2
                            }
                        }
                    }
                }
            }
        }
    }

    /// dM = A·dy·Aᵀ for each tile's 2×2 block of dy (0 outside the image), the adjoint of
    /// the output transform: A·(y0, y1) = (y0, y0 + y1, y0 − y1, −y1). Row ξ of tile i at
    /// dm[(ξ·block + i)·k].
    static func transformGradient(_ dy: UnsafePointer<Float>, h: Int, w: Int, k: Int, th: Int, tw: Int, tiles: Range<Int>, block: Int,
                                  into dm: UnsafeMutablePointer<Float>) {
        for (i, t) in tiles.enumerated() {
            let n = t / (th * tw), ty = t / tw % th, tx = t % tw
            let oy = 2 * ty, ox = 2 * tx
            let right = ox + 1 < w, lower = oy + 1 < h
            let p0 = dy + ((n * h + oy) * w + ox) * k
            let p1 = p0 + w * k
            var ch = 0
            while ch < k {
                @inline(__always) func ld(_ p: UnsafePointer<Float>, _ ok: Bool) -> V { ok ? UnsafeRawPointer(p + ch).loadUnaligned(as: V.self) : V() }
                let (y00, y01) = (ld(p0, true), ld(p0 + k, right))
                let (y10, y11) = (ld(p1, lower), ld(p1 + k, lower && right))
                // A·dy: rows (4×2), then ·Aᵀ: columns (4×4).
                @inline(__always) func row(_ a: Int, _ r0: V, _ r1: V) {
                    store(dm, (a * 4 + 0) * block + i, k, ch, r0)
                    store(dm, (a * 4 + 1) * block + i, k, ch, r0 + r1)
                    store(dm, (a * 4 + 2) * block + i, k, ch, r0 - r1)
                    store(dm, (a * 4 + 3) * block + i, k, ch, -r1)
                }
                row(0, y00, y01); row(1, y00 + y10, y01 + y11); row(2, y00 - y10, y01 - y11); row(3, -y10, -y11)
                ch += 8
            }
        }
    }

    typealias V = SIMD8<Float>

    /// The 1-D input transform Bᵀ·(d0, d1, d2, d3), Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
    @inline(__always)
    static func bt(_ d0: V, _ d1: V, _ d2: V, _ d3: V) -> (V, V, V, V) { (d0 - d2, d1 + d2, d2 - d1, d1 - d3) }

    /// The 1-D output transform Aᵀ·(m0, m1, m2, m3), Aᵀ = [1 1 1 0; 0 1 −1 −1].
    @inline(__always)
    static func at(_ m0: V, _ m1: V, _ m2: V, _ m3: V) -> (V, V) { (m0 + m1 + m2, m1 - m2 - m3) }

    /// V = Bᵀ·d·B for each tile of `tiles` and each channel; row ξ of tile i at
    /// v[(ξ·block + i)·c]. Outside the image d is 0 (the padding).
    static func transformInput(x: UnsafePointer<Float>, h: Int, w: Int, c: Int, th: Int, tw: Int, tiles: Range<Int>, block: Int,
                               into v: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 16) { offsets in
            let o = offsets.baseAddress!
            for (i, t) in tiles.enumerated() {
                let n = t / (th * tw), ty = t / tw % th, tx = t % tw
                // Each of the 4×4 input pixels: its offset in x, or −1 in the padding.
                for a in 0..<4 { for b in 0..<4 {
                    let iy = 2 * ty - 1 + a, ix = 2 * tx - 1 + b
                    o[a * 4 + b] = iy >= 0 && iy < h && ix >= 0 && ix < w ? ((n * h + iy) * w + ix) * c : -1
                } }
                var ch = 0
                while ch < c {
                    @inline(__always) func d(_ a: Int, _ b: Int) -> V {
                        let off = o[a * 4 + b]
                        return off < 0 ? V() : UnsafeRawPointer(x + off + ch).loadUnaligned(as: V.self)
                    }
                    // Bᵀ·d column by column, then ·B row by row.
                    let c0 = bt(d(0, 0), d(1, 0), d(2, 0), d(3, 0)), c1 = bt(d(0, 1), d(1, 1), d(2, 1), d(3, 1))
                    let c2 = bt(d(0, 2), d(1, 2), d(2, 2), d(3, 2)), c3 = bt(d(0, 3), d(1, 3), d(2, 3), d(3, 3))
                    @inline(__always) func row(_ a: Int, _ e: (V, V, V, V)) {
                        let r = bt(e.0, e.1, e.2, e.3)
                        store(v, (a * 4 + 0) * block + i, c, ch, r.0)
                        store(v, (a * 4 + 1) * block + i, c, ch, r.1)
                        store(v, (a * 4 + 2) * block + i, c, ch, r.2)
                        store(v, (a * 4 + 3) * block + i, c, ch, r.3)
                    }
                    row(0, (c0.0, c1.0, c2.0, c3.0)); row(1, (c0.1, c1.1, c2.1, c3.1))
                    row(2, (c0.2, c1.2, c2.2, c3.2)); row(3, (c0.3, c1.3, c2.3, c3.3))
                    ch += 8
                }
            }
        }
    }

    /// Y = Aᵀ·M·A, written to the tile's output pixels that lie inside the image.
    static func transformOutput(_ m: UnsafePointer<Float>, h: Int, w: Int, k: Int, th: Int, tw: Int, tiles: Range<Int>, block: Int,
                                into y: UnsafeMutablePointer<Float>) {
        for (i, t) in tiles.enumerated() {
            let n = t / (th * tw), ty = t / tw % th, tx = t % tw
            let oy = 2 * ty, ox = 2 * tx
            var ch = 0
            while ch < k {
                @inline(__always) func mm(_ xi: Int) -> V { UnsafeRawPointer(m + (xi * block + i) * k + ch).loadUnaligned(as: V.self) }
                // Aᵀ·M column by column, then ·A row by row.
                let c0 = at(mm(0), mm(4), mm(8), mm(12)), c1 = at(mm(1), mm(5), mm(9), mm(13))
                let c2 = at(mm(2), mm(6), mm(10), mm(14)), c3 = at(mm(3), mm(7), mm(11), mm(15))
                @inline(__always) func put(_ a: Int, _ r: (V, V)) {
                    guard oy + a < h else { return }
                    let p = y + ((n * h + oy + a) * w + ox) * k + ch
                    UnsafeMutableRawPointer(p).storeBytes(of: r.0, as: V.self)
                    if ox + 1 < w { UnsafeMutableRawPointer(p + k).storeBytes(of: r.1, as: V.self) }
                }
                put(0, at(c0.0, c1.0, c2.0, c3.0))
                put(1, at(c0.1, c1.1, c2.1, c3.1))
                ch += 8
            }
        }
    }

    @inline(__always)
    static func store(_ v: UnsafeMutablePointer<Float>, _ row: Int, _ c: Int, _ ch: Int, _ value: V) {
        UnsafeMutableRawPointer(v + row * c + ch).storeBytes(of: value, as: V.self)
    }
}
