import MoLASupport
/// The sizes of a 2-D convolution over channels-last images.
/// Weights are `kh×kw×cin×cout` (row-major: the K×N matrix of im2col·W, K = kh·kw·cin).
public struct ConvShape: Equatable, Hashable, Sendable {
    public var batch: Int, height: Int, width: Int, inChannels: Int
    public var outChannels: Int, kernel: Int, stride: Int, padding: Int

    public init(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.batch = batch; self.height = height; self.width = width; self.inChannels = inChannels
        self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Rows of the im2col matrix: one per output pixel.
    public var rows: Int { batch * outHeight * outWidth }
    /// Columns of the im2col matrix: one per weight of a filter.
    public var patch: Int { kernel * kernel * inChannels }
    public var inputCount: Int { batch * height * width * inChannels }
    public var outputCount: Int { rows * outChannels }
    public var weightCount: Int { patch * outChannels }
    /// A 1×1, stride-1, unpadded convolution reads its input as the im2col matrix itself.
    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    public var flops: Double { 2 * Double(rows) * Double(patch) * Double(outChannels) }
}

/// A convolution's weights for the forward and input-gradient passes: W (patch × C_out),
/// or W + scale·A·B with a low-rank adapter (A patch × r, B r × C_out), merged as the
/// kernels pack the weights.
public struct ConvWeights {
    public var w: UnsafePointer<Float>
    public var lowRank: (a: UnsafePointer<Float>, b: UnsafePointer<Float>, rank: Int, scale: Float)?

    public init(_ w: UnsafePointer<Float>, adapter lowRank: (a: UnsafePointer<Float>, b: UnsafePointer<Float>, rank: Int, scale: Float)? = nil) {
        self.w = w
        self.lowRank = lowRank
    }
}

/// Convolution as im2col·W, forward and backward, on the GEMM micro-kernel. The im2col
/// matrix is never built whole: each thread builds it in chunks of output pixels small
/// enough to stay in L1 (~24 KiB) and multiplies each chunk at once. (Chunks of 115 KiB
/// made im2col store-bound: 15% of a training step, measured.) Backward chunks are the
/// reduction dimension of the weight gradient, so there longer chunks win.
public enum Conv2D {
    static let forwardChunkBytes = 24 << 10
    static let backwardChunkBytes = 112 << 10
    /// Weight-gradient chunks are the GEMM's reduction: each chunk reads and writes all of
    /// dw, so they must be long where dw is large (ResNet-18's 4608×512 layers: 25 rows
    /// made dw 1.5× faster than 5, measured with `mola-bench conv-layers`).
    static let weightChunkBytes = 512 << 10
    static let weightChunkMinRows = 25
    /// Output pixels per chunk: a multiple of the micro-kernel's rows, ~`bytes` of im2col.
    static func chunkRows(_ s: ConvShape, bytes: Int) -> Int {
        max(MicroKernel.rows, bytes / (4 * s.patch) / MicroKernel.rows * MicroKernel.rows)
    }

    /// y[rows×cout] = im2col(x)·w. Overwrites y.
    public static func forward(_ s: ConvShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               engine: Engine = .default) {
        forward(s, x: x, weights: ConvWeights(w), y: y, engine: engine)
    }

    /// y = im2col(x)·W', W' the (merged) weights.
    public static func forward(_ s: ConvShape, x: UnsafePointer<Float>, weights: ConvWeights, y: UnsafeMutablePointer<Float>,
                               engine: Engine = .default) {
        let threads = engine.threads
        engine.measure(.convForward, flops: s.flops) {
            if Winograd.applies(s, engine: engine) { Winograd.forward(s, x: x, weights: weights, y: y, engine: engine); return }
            let packed = PackedPanels(weights, patch: s.patch, outChannels: s.outChannels, transposed: false, threads: threads)
            let tiles = (s.rows + MicroKernel.rows - 1) / MicroKernel.rows
            Parallel.forRanges(tiles, threads: threads) { part in
                let lo = part.lowerBound * MicroKernel.rows, hi = min(s.rows, part.upperBound * MicroKernel.rows)
                let chunk = chunkRows(s, bytes: forwardChunkBytes)
                let buffer = s.isPointwise ? nil : Scratch.floats(chunk * s.patch, slot: ScratchSlot.im2col)
                var r = lo
                while r < hi {
                    let n = min(chunk, hi - r)
                    let a: UnsafePointer<Float>
                    if let buffer { im2col(s, x: x, rows: r..<(r + n), into: buffer); a = UnsafePointer(buffer) } else { a = x + r * s.patch }
                    GEMM.multiplyRows(0..<n, panels: 0..<packed.panels, a: a, rowStride: s.patch, kStride: 1, packed: packed,
                                      c: y + r * s.outChannels, ldc: s.outChannels, alpha: 1, accumulate: false, wide: engine.wideKernels)
                    r += n
                }
            }
        }
    }

    /// Gradients: dx = col2im(dy·wᵀ) (overwritten, when given) and dw += im2col(x)ᵀ·dy.
    public static func backward(_ s: ConvShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        weightGradient(s, x: x, dy: dy, dw: dw, engine: engine)
        if let dx { inputGradient(s, w: w, dy: dy, dx: dx, engine: engine) }
    }

    /// dw += im2col(x)ᵀ·dy (dw = … when not `accumulate`). Threads take whole images; their
    /// partials are added in thread order, so the result is fixed for a thread count.
    public static func weightGradient(_ s: ConvShape, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                      accumulate: Bool = true, engine: Engine = .default) {
        let threads = engine.threads
        // No images (a task group none of a rank's rows belong to): nothing to add. The
        // paths below would add what their partial sums' scratch last held.
        guard s.batch > 0 else {
            if !accumulate { dw.update(repeating: 0, count: s.weightCount) }
            return
        }
        engine.measure(.convWeightGradient, flops: s.flops) {
            if Winograd.applies(s, engine: engine) { Winograd.weightGradient(s, x: x, dy: dy, dw: dw, accumulate: accumulate, engine: engine); return }
            let parts = max(1, min(threads, s.batch))
            let partials = parts > 1 ? Scratch.floats(parts * s.weightCount, slot: ScratchSlot.splitK) : nil
            let pixels = s.outHeight * s.outWidth
            Parallel.run(parts) { t in
                let images = Parallel.range(of: t, parts: parts, count: s.batch)
                let dwPart = partials.map { $0 + t * s.weightCount } ?? dw
                let chunk = max(weightChunkMinRows, chunkRows(s, bytes: weightChunkBytes))
                let cols = Scratch.floats(chunk * s.patch, slot: ScratchSlot.im2col)
                var r = images.lowerBound * pixels
                let end = images.upperBound * pixels
                while r < end {
                    let n = min(chunk, end - r)
                    // The rows of dw run along the patch, read from cols in place.
                    let a: UnsafePointer<Float>
                    if s.isPointwise { a = x + r * s.patch } else { im2col(s, x: x, rows: r..<(r + n), into: cols); a = UnsafePointer(cols) }
                    let dyChunk = PackedPanels(b: dy + r * s.outChannels, ldb: s.outChannels, transposed: false, k: n,
                                               n: s.outChannels, slot: ScratchSlot.packedChunk)
                    // A partial (or an overwritten dw) starts with its first chunk: no zeroing pass.
                    let first = r == images.lowerBound * pixels && (partials != nil || !accumulate)
                    GEMM.multiplyRows(0..<s.patch, panels: 0..<dyChunk.panels, a: a, rowStride: 1, kStride: s.patch,
                                      packed: dyChunk, c: dwPart, ldc: s.outChannels, alpha: 1, accumulate: !first, wide: engine.wideKernels)
                    r += n
                }
            }
            // dw += the partials in thread order, each thread a slice of the weights.
            if let partials {
                Parallel.forRanges(s.weightCount, threads: threads, minPerThread: 1 << 14) { slice in
                    if !accumulate { copy(slice.count, from: partials + slice.lowerBound, to: dw + slice.lowerBound) }
                    for t in (accumulate ? 0 : 1)..<parts {
                        add(slice.count, from: partials + t * s.weightCount + slice.lowerBound, to: dw + slice.lowerBound)
                    }
                }
            }
        }
    }

    /// dx = col2im(dy·wᵀ), overwritten. Threads take whole images, so no two write the
    /// same pixel.
    public static func inputGradient(_ s: ConvShape, w: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                     accumulate: Bool = false, engine: Engine = .default) {
        inputGradient(s, weights: ConvWeights(w), dy: dy, dx: dx, accumulate: accumulate, engine: engine)
    }

    /// dx = col2im(dy·W'ᵀ), W' the (merged) weights; dx += … when `accumulate`.
    public static func inputGradient(_ s: ConvShape, weights: ConvWeights, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                     accumulate: Bool = false, engine: Engine = .default) {
        let threads = engine.threads
        engine.measure(.convInputGradient, flops: s.flops) {
            if !accumulate && Winograd.applies(s, engine: engine) { Winograd.inputGradient(s, weights: weights, dy: dy, dx: dx, engine: engine); return }
            let parts = max(1, min(threads, s.batch))
            let wT = PackedPanels(weights, patch: s.patch, outChannels: s.outChannels, transposed: true, threads: threads)
            let pixels = s.outHeight * s.outWidth
            Parallel.run(parts) { t in
                let images = Parallel.range(of: t, parts: parts, count: s.batch)
                let imageSize = s.height * s.width * s.inChannels
                if !s.isPointwise && !accumulate { (dx + images.lowerBound * imageSize).update(repeating: 0, count: images.count * imageSize) }
                let chunk = chunkRows(s, bytes: backwardChunkBytes)
                let grads = Scratch.floats(chunk * s.patch, slot: ScratchSlot.columnGradient)
                var r = images.lowerBound * pixels
                let end = images.upperBound * pixels
                while r < end {
                    let n = min(chunk, end - r)
                    let target = s.isPointwise ? dx + r * s.patch : grads
                    GEMM.multiplyRows(0..<n, panels: 0..<wT.panels, a: dy + r * s.outChannels, rowStride: s.outChannels, kStride: 1,
                                      packed: wT, c: target, ldc: s.patch, alpha: 1, accumulate: s.isPointwise && accumulate, wide: engine.wideKernels)
                    if !s.isPointwise { col2im(s, rows: r..<(r + n), from: grads, into: dx) }
                    r += n
                }
            }
        }
    }

    /// Walks output pixels `rows` in order, calling `body(row offset in the chunk, n, oy, ox)`
    /// without a division per pixel.
    @inline(__always)
    static func forEachPixel(_ s: ConvShape, _ rows: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        let (oh, ow) = (s.outHeight, s.outWidth)
        guard !rows.isEmpty else { return }
        var n = rows.lowerBound / (oh * ow), oy = rows.lowerBound / ow % oh, ox = rows.lowerBound % ow
        for i in 0..<rows.count {
            body(i, n, oy, ox)
            ox += 1
            if ox == ow { ox = 0; oy += 1; if oy == oh { oy = 0; n += 1 } }
        }
    }

    /// Writes the im2col rows of output pixels `rows` (patch floats each, zero where the
    /// window hangs over the padding). A window row (kx = 0..<k) is k contiguous pixels of
    /// x, so away from the left and right edges it is one copy of k·C floats.
    static func im2col(_ s: ConvShape, x: UnsafePointer<Float>, rows: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let (c, k, w) = (s.inChannels, s.kernel, s.width)
        let segment = k * c
        forEachPixel(s, rows) { i, n, oy, ox in
            let dst = buffer + i * s.patch
            let ix0 = ox * s.stride - s.padding
            let inside = ix0 >= 0 && ix0 + k <= w
            for ky in 0..<k {
                let iy = oy * s.stride - s.padding + ky
                let d = dst + ky * segment
                if iy < 0 || iy >= s.height { d.update(repeating: 0, count: segment); continue }
                let row = x + (n * s.height + iy) * w * c
                if inside { copy(segment, from: row + ix0 * c, to: d); continue }
                for kx in 0..<k {
                    let ix = ix0 + kx
                    if ix < 0 || ix >= w { (d + kx * c).update(repeating: 0, count: c) } else { copy(c, from: row + ix * c, to: d + kx * c) }
                }
            }
        }
    }

    /// Adds column gradients of output pixels `rows` onto the input pixels they came from.
    static func col2im(_ s: ConvShape, rows: Range<Int>, from buffer: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        let (c, k, w) = (s.inChannels, s.kernel, s.width)
        let segment = k * c
        forEachPixel(s, rows) { i, n, oy, ox in
            let src = buffer + i * s.patch
            let ix0 = ox * s.stride - s.padding
            let inside = ix0 >= 0 && ix0 + k <= w
            for ky in 0..<k {
                let iy = oy * s.stride - s.padding + ky
                if iy < 0 || iy >= s.height { continue }
                let row = dx + (n * s.height + iy) * w * c
                if inside { add(segment, from: src + ky * segment, to: row + ix0 * c); continue }
                for kx in 0..<k {
                    let ix = ix0 + kx
                    if ix >= 0 && ix < w { add(c, from: src + ky * segment + kx * c, to: row + ix * c) }
                }
            }
        }
    }
}

/// dst[0..<n] = src[0..<n], eight floats at a time (inline: these copies are short).
@inline(__always)
func copy(_ n: Int, from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 8 <= n {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { dst[i] = src[i]; i += 1 }
}

/// dst[0..<n] += src[0..<n], eight floats at a time.
@inline(__always)
func add(_ n: Int, from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: v, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { dst[i] += src[i]; i += 1 }
}
