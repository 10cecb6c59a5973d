import Foundation
import MoLASupport

/// Winograd convolution for stride-1, padding-1 3×3 convolutions (every 3×3 conv of a
/// ResNet block but the first of a stage), in two tile sizes: F(2×2, 3×3)
/// (`WinogradF2`, 2.25× fewer multiplies than direct) and F(4×4, 3×3) (`WinogradF4`, 4×).
/// Each m×m block of output pixels comes from an (m+2)×(m+2) block of input:
///   V = Bᵀ·d·B,  U = G·g·Gᵀ,  M = Σ_c U ⊙ V ((m+2)² independent C_in × C_out products),
///   Y = Aᵀ·M·A.
/// The products run on the GEMM micro-kernel over blocks of tiles; the transforms are
/// vectorised over channels. The input gradient of such a convolution is the same
/// convolution of dy with the filters flipped and C_in, C_out swapped, so it runs here
/// too; the weight gradient runs the transforms' adjoints, with the tiles as the products'
/// long reduction.
///
/// Float32 error against float64 direct convolution is tested on every ResNet-18 and
/// resnet-mini layer shape. `Engine.winograd` (`MOLA_WINOGRAD`) decides which runs.
public enum Winograd {
    typealias V = SIMD8<Float>

    /// The passes of a convolution, which may run with different tile sizes.
    public enum Pass: Sendable, CaseIterable { case forward, inputGradient, weightGradient }

    /// The tile size a pass of a convolution runs with; nil: not Winograd. Eligible: 3×3,
    /// stride 1, padding 1, channel counts in whole SIMD8 vectors, and enough tiles to
    /// repay transforming the weights (`Engine.winogradMinTiles`): with few images per
    /// call (a small task group of a late stage) the transform costs more than it saves.
    /// Under `auto`, F(4×4) where it needs at most 1/1.5 of F(2×2)'s multiplies once its
    /// tiles' padding is counted (28×28, 7×7 and 4×4 maps, not 14×14: 16×16 of tiles for
    /// 14×14 pixels), and for the weight gradient only with at least as many tiles as
    /// channels, as its (m+2)²·C_in·C_out partial sums per thread outweigh few tiles.
    /// The rules come from `mola-bench conv-layers` on ResNet-18's and resnet-mini's shapes.
    /// The tiles are counted for `Engine.pathBatch` images when it is set (a training
    /// run's global batch), so a task group's or a rank's share of a batch runs the kernels
    /// the whole batch runs in one process.
    public static func tile(_ s: ConvShape, engine: Engine, pass: Pass = .forward) -> Int? {
        let images = engine.pathBatch ?? s.batch, wider = max(s.inChannels, s.outChannels)
        guard engine.winograd != .off, s.kernel == 3, s.stride == 1, s.padding == 1, s.inChannels % 8 == 0, s.outChannels % 8 == 0,
              images * tilesPerImage(s, side: 2) >= engine.winogradMinTiles * wider else { return nil }
        switch engine.winograd {
        case .f4: return 4
        case .auto:
            let fewerMultiplies = 2 * 16 * tilesPerImage(s, side: 2) >= 3 * 36 * tilesPerImage(s, side: 4)
            let enoughTiles = pass != .weightGradient || images * tilesPerImage(s, side: 4) >= wider
            return fewerMultiplies && enoughTiles ? 4 : 2
        default: return 2
        }
    }

    /// Whether a convolution runs here.
    public static func applies(_ s: ConvShape, engine: Engine) -> Bool { tile(s, engine: engine) != nil }

    static func tilesPerImage(_ s: ConvShape, side: Int) -> Int { ((s.height + side - 1) / side) * ((s.width + side - 1) / side) }

    /// y = conv(x, W') for W' the (merged) weights; overwrites y.
    static func forward(_ s: ConvShape, x: UnsafePointer<Float>, weights: ConvWeights, y: UnsafeMutablePointer<Float>, engine: Engine) {
        switch tile(s, engine: engine, pass: .forward) {
        case 4: Passes<WinogradF4>.forward(s, x: x, weights: weights, y: y, engine: engine)
        default: Passes<WinogradF2>.forward(s, x: x, weights: weights, y: y, engine: engine)
        }
    }

    /// dx = the input gradient of conv(x, W') for dy; overwrites dx.
    static func inputGradient(_ s: ConvShape, weights: ConvWeights, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, engine: Engine) {
        switch tile(s, engine: engine, pass: .inputGradient) {
        case 4: Passes<WinogradF4>.inputGradient(s, weights: weights, dy: dy, dx: dx, engine: engine)
        default: Passes<WinogradF2>.inputGradient(s, weights: weights, dy: dy, dx: dx, engine: engine)
        }
    }

    /// dw += (dw = … when not `accumulate`) the weight gradient.
    static func weightGradient(_ s: ConvShape, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                               accumulate: Bool, engine: Engine) {
        switch tile(s, engine: engine, pass: .weightGradient) {
        case 4: Passes<WinogradF4>.weightGradient(s, x: x, dy: dy, dw: dw, accumulate: accumulate, engine: engine)
        default: Passes<WinogradF2>.weightGradient(s, x: x, dy: dy, dw: dw, accumulate: accumulate, engine: engine)
        }
    }

    /// Where the tiles of an image batch lie: tile t is image t / (th·tw), row t / tw % th,
    /// column t % tw, its output block at (side·row, side·column).
    struct Tiling {
        let h: Int, w: Int, side: Int, th: Int, tw: Int
        init(h: Int, w: Int, side: Int) {
            (self.h, self.w, self.side) = (h, w, side)
            (th, tw) = ((h + side - 1) / side, (w + side - 1) / side)
        }
        /// The tile's image and the top-left pixel of its output block.
        @inline(__always)
        func origin(_ t: Int) -> (n: Int, oy: Int, ox: Int) { (t / (th * tw), side * (t / tw % th), side * (t % tw)) }
        /// The offset in the NHWC input (of `channels`) of each of the tile's (side+2)²
        /// input pixels, row by row; −1 in the padding.
        @inline(__always)
        func inputOffsets(_ t: Int, channels c: Int, into o: UnsafeMutablePointer<Int>) {
            let (n, oy, ox) = origin(t), a = side + 2
            for i in 0..<a { for j in 0..<a {
                let iy = oy - 1 + i, ix = ox - 1 + j
                o[i * a + j] = iy >= 0 && iy < h && ix >= 0 && ix < w ? ((n * h + iy) * w + ix) * c : -1
            } }
        }
    }

    @inline(__always)
    static func store(_ v: UnsafeMutablePointer<Float>, _ row: Int, _ c: Int, _ ch: Int, _ value: V) {
        UnsafeMutableRawPointer(v + row * c + ch).storeBytes(of: value, as: V.self)
    }
}

/// One Winograd tile size F(m×m, 3×3): its transforms, each over blocks of tiles and
/// vectorised over channels. Row ξ of tile i of a block is at buffer[(ξ·block + i)·channels].
protocol WinogradTile {
    /// m, the output block's side; the input block's is m + 2.
    static var side: Int { get }
    /// U = G·g·Gᵀ of one 3×3 filter g (row-major): writes u[ξ·stride] for the (m+2)² ξ.
    static func transformFilter(_ g: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, stride: Int)
    /// dg = Gᵀ·dU·G, the 3×3 filter gradient (row-major) of the (m+2)² values dU.
    static func filterGradient(_ du: UnsafePointer<Float>, into g: UnsafeMutablePointer<Float>)
    /// V = Bᵀ·d·B for each tile and channel; outside the image d is 0 (the padding).
    static func transformInput(x: UnsafePointer<Float>, _ t: Winograd.Tiling, c: Int, tiles: Range<Int>, block: Int, into v: UnsafeMutablePointer<Float>)
    /// Y = Aᵀ·M·A, written to the tile's output pixels inside the image.
    static func transformOutput(_ m: UnsafePointer<Float>, _ t: Winograd.Tiling, k: Int, tiles: Range<Int>, block: Int, into y: UnsafeMutablePointer<Float>)
    /// dM = A·dy·Aᵀ (the output transform's adjoint) of each tile's block of dy, 0 outside.
    static func transformGradient(_ dy: UnsafePointer<Float>, _ t: Winograd.Tiling, k: Int, tiles: Range<Int>, block: Int, into dm: UnsafeMutablePointer<Float>)
}

/// The three passes of a convolution on tile size `T`.
enum Passes<T: WinogradTile> {
    static var positions: Int { (T.side + 2) * (T.side + 2) }

    static func forward(_ s: ConvShape, x: UnsafePointer<Float>, weights: ConvWeights, y: UnsafeMutablePointer<Float>, engine: Engine) {
        let u = transformedWeights(s, weights, inputGradient: false, engine: engine)
        convolve(s, inChannels: s.inChannels, outChannels: s.outChannels, x: x, u: u, y: y, engine: engine)
    }

    static func inputGradient(_ s: ConvShape, weights: ConvWeights, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, engine: Engine) {
        let u = transformedWeights(s, weights, inputGradient: true, engine: engine)
        convolve(s, inChannels: s.outChannels, outChannels: s.inChannels, x: dy, u: u, y: dx, engine: engine)
    }

    /// U for each position ξ, packed as the micro-kernel's B (rows: the convolution's
    /// input channels). For the input gradient the filters are flipped and the channel
    /// roles swapped. In the calling thread's scratch.
    static func transformedWeights(_ s: ConvShape, _ weights: ConvWeights, inputGradient: Bool, engine: Engine) -> [PackedPanels] {
        let (c, k, positions) = (s.inChannels, s.outChannels, positions)
        var w = weights.w
        if let low = weights.lowRank {
            let merged = Scratch.floats(s.weightCount, slot: ScratchSlot.mergedWeights)
            LowRank.merge(k: s.patch, n: k, rank: low.rank, scale: low.scale, w: w, a: low.a, b: low.b, into: merged, engine: engine)
            w = UnsafePointer(merged)
        }
        let (rows, cols) = inputGradient ? (k, c) : (c, k)
        let panels = (cols + 15) / 16
        let storage = Scratch.floats(positions * panels * rows * 16, slot: ScratchSlot.winogradWeights)
        let packed = (0..<positions).map { PackedPanels(k: rows, n: cols, storage: storage + $0 * panels * rows * 16) }
        let weightsPointer = w
        Parallel.forRanges(rows, threads: engine.threads, minPerThread: 8) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: positions * cols + 9) { out in
                let u = out.baseAddress!, g = u + positions * cols
                for row in range {
                    for col in 0..<cols {
                        // g[ky][kx] for (row, col): forward g_{c=row,k=col}; input gradient the
                        // flipped g_{c=col,k=row}[2−ky][2−kx].
                        for ky in 0..<3 { for kx in 0..<3 {
                            g[ky * 3 + kx] = inputGradient ? weightsPointer[((2 - ky) * 3 + (2 - kx)) * c * k + col * k + row]
                                : weightsPointer[(ky * 3 + kx) * c * k + row * k + col]
                        } }
                        T.transformFilter(g, into: u + col, stride: cols)
                    }
                    for xi in 0..<positions {
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

    /// Tiles per block: the transformed input rows and products of a block stay near L2
    /// (~1 MiB each), at least 100 rows so each packed B panel is reused long enough.
    static func blockTiles(_ channels: Int) -> Int {
        max(100, (1 << 20) / (4 * positions * channels) / MicroKernel.rows * MicroKernel.rows)
    }

    /// y (outChannels) = the Winograd convolution of x (inChannels) with transformed
    /// filters u. Threads take contiguous ranges of output tiles.
    static func convolve(_ s: ConvShape, inChannels c: Int, outChannels k: Int, x: UnsafePointer<Float>, u: [PackedPanels],
                         y: UnsafeMutablePointer<Float>, engine: Engine) {
        let tiling = Winograd.Tiling(h: s.height, w: s.width, side: T.side), positions = positions
        let total = s.batch * tiling.th * tiling.tw
        let block = blockTiles(max(c, k))
        Parallel.forRanges(total, threads: engine.threads, minPerThread: MicroKernel.rows) { range in
            let v = Scratch.floats(positions * block * c, slot: ScratchSlot.im2col)
            let m = Scratch.floats(positions * block * k, slot: ScratchSlot.columnGradient)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let nb = min(block, range.upperBound - t0)
                T.transformInput(x: x, tiling, c: c, tiles: t0..<(t0 + nb), block: block, into: v)
                for xi in 0..<positions {
                    GEMM.multiplyRows(0..<nb, panels: 0..<u[xi].panels, a: v + xi * block * c, rowStride: c, kStride: 1,
                                      packed: u[xi], c: m + xi * block * k, ldc: k, alpha: 1, accumulate: false, wide: engine.wideKernels)
                }
                T.transformOutput(m, tiling, k: k, tiles: t0..<(t0 + nb), block: block, into: y)
                t0 += nb
            }
        }
    }

    /// dw += (dw = … when not `accumulate`) the weight gradient through the transformed
    /// domain: per tile dM = A·dy·Aᵀ, dU_ξ = Σ_tiles V_ξᵀ·dM_ξ (products with the tiles as
    /// the long reduction), dW = Gᵀ·dU·G. Threads take tile ranges into private dU
    /// partials, added in thread order.
    static func weightGradient(_ s: ConvShape, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                               accumulate: Bool, engine: Engine) {
        let threads = engine.threads, positions = positions
        let (c, k) = (s.inChannels, s.outChannels)
        let tiling = Winograd.Tiling(h: s.height, w: s.width, side: T.side)
        let total = s.batch * tiling.th * tiling.tw
        let block = blockTiles(max(c, k))
        let parts = max(1, min(threads, total / MicroKernel.rows))
        let size = positions * c * k
        let partials = Scratch.floats(parts * size, slot: ScratchSlot.winogradPartials)
        Parallel.run(parts) { t in
            let range = Parallel.range(of: t, parts: parts, count: total)
            let du = partials + t * size
            let v = Scratch.floats(positions * block * c, slot: ScratchSlot.im2col)
            let dm = Scratch.floats(positions * block * k, slot: ScratchSlot.columnGradient)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let nb = min(block, range.upperBound - t0)
                T.transformInput(x: x, tiling, c: c, tiles: t0..<(t0 + nb), block: block, into: v)
                T.transformGradient(dy, tiling, k: k, tiles: t0..<(t0 + nb), block: block, into: dm)
                for xi in 0..<positions {
                    let packed = PackedPanels(b: dm + xi * block * k, ldb: k, transposed: false, k: nb, n: k, slot: ScratchSlot.packedChunk)
                    GEMM.multiplyRows(0..<c, panels: 0..<packed.panels, a: v + xi * block * c, rowStride: 1, kStride: c,
                                      packed: packed, c: du + xi * c * k, ldc: k, alpha: 1, accumulate: t0 != range.lowerBound, wide: engine.wideKernels)
                }
                t0 += nb
            }
        }
        // dU = Σ partials (thread order), then dW = Gᵀ·dU·G, split over input channels.
        Parallel.forRanges(c, threads: threads) { channels in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: positions + 9) { buffer in
                let u = buffer.baseAddress!, g = u + positions
                for ci in channels {
                    for ko in 0..<k {
                        for xi in 0..<positions {
                            var sum = partials[xi * c * k + ci * k + ko]
                            for t in 1..<max(1, parts) { sum += partials[t * size + xi * c * k + ci * k + ko] }
                            u[xi] = sum
                        }
                        T.filterGradient(u, into: g)
                        for tap in 0..<9 {
                            let p = dw + tap * c * k + ci * k + ko
                            p.pointee = accumulate ? p.pointee + g[tap] : g[tap]
                        }
                    }
                }
            }
        }
    }
}
