import MoLASupport
/// Depthwise convolution (one k×k filter per channel, ShuffleNet's spatial layer) over
/// channels-last images, weights k×k×C. Every loop's innermost index is the channel, which
/// is contiguous in both the image and the weight, so the compiler vectorises it.
public enum Depthwise {
    public struct Shape: Equatable, Sendable {
        public var batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int
        public init(batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int) {
            self.batch = batch; self.height = height; self.width = width; self.channels = channels
            self.kernel = kernel; self.stride = stride; self.padding = padding
        }
        public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    }

    /// The filter taps of output pixel (oy, ox) that fall inside the image: tap index i·k + j
    /// and input pixel iy·W + ix.
    @inline(__always)
    static func taps(_ s: Shape, _ oy: Int, _ ox: Int, _ body: (_ tap: Int, _ pixel: Int) -> Void) {
        for i in 0..<s.kernel {
            let iy = oy * s.stride - s.padding + i
            guard iy >= 0, iy < s.height else { continue }
            for j in 0..<s.kernel {
                let ix = ox * s.stride - s.padding + j
                if ix >= 0, ix < s.width { body(i * s.kernel + j, iy * s.width + ix) }
            }
        }
    }

    /// y[n, oy, ox, c] = Σ_ij x[n, oy·s − p + i, ox·s − p + j, c]·w[i, j, c]; threads take whole images.
    public static func forward(_ s: Shape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               engine: Engine = .default) {
        let threads = engine.threads
        let c = s.channels, (oh, ow) = (s.outHeight, s.outWidth)
        Parallel.forRanges(s.batch, threads: threads) { images in
            for n in images {
                for oy in 0..<oh { for ox in 0..<ow {
                    let out = y + ((n * oh + oy) * ow + ox) * c
                    out.update(repeating: 0, count: c)
                    taps(s, oy, ox) { k, pixel in
                        let xin = x + (n * s.height * s.width + pixel) * c, wk = w + k * c
                        for ch in 0..<c { out[ch] += xin[ch] * wk[ch] }
                    }
                } }
            }
        }
    }

    /// dx = the input gradient (overwritten), dw += the weight gradient. Each thread sums
    /// its images' dw in its own buffer; the buffers are added in thread order, so the
    /// result is fixed for a thread count.
    public static func backward(_ s: Shape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        let threads = engine.threads
        let c = s.channels, (oh, ow) = (s.outHeight, s.outWidth), wCount = s.kernel * s.kernel * c
        let parts = max(1, min(threads, s.batch))
        var partial = [Float](repeating: 0, count: parts * wCount)
        partial.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            Parallel.run(parts) { part in
                let lo = part * s.batch / parts, hi = (part + 1) * s.batch / parts
                let dwPart = base + part * wCount
                for n in lo..<hi {
                    if let dx { (dx + n * s.height * s.width * c).update(repeating: 0, count: s.height * s.width * c) }
                    for oy in 0..<oh { for ox in 0..<ow {
                        let g = dy + ((n * oh + oy) * ow + ox) * c
                        taps(s, oy, ox) { k, pixel in
                            let offset = (n * s.height * s.width + pixel) * c
                            let xin = x + offset, wk = w + k * c, dwk = dwPart + k * c
                            for ch in 0..<c { dwk[ch] += xin[ch] * g[ch] }
                            if let dx { let d = dx + offset; for ch in 0..<c { d[ch] += g[ch] * wk[ch] } }
                        }
                    } }
                }
            }
            for part in 0..<parts { for k in 0..<wCount { dw[k] += base[part * wCount + k] } }
        }
    }
}

/// ShuffleNet V2's channel operations over channels-last rows: a unit's two halves are
/// joined and shuffled (groups 2) in one step — output channel 2i is a's i, 2i+1 is b's i.
public enum ChannelShuffle {
    /// out[r, 2i] = a[r, i], out[r, 2i+1] = b[r, i]; a and b have `half` channels.
    public static func interleave(rows: Int, half: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let (pa, pb, po) = (a + r * half, b + r * half, out + r * 2 * half)
            for i in 0..<half { po[2 * i] = pa[i]; po[2 * i + 1] = pb[i] }
        }
    }

    /// The inverse (the gradient of `interleave`): a[r, i] = x[r, 2i], b[r, i] = x[r, 2i+1].
    public static func deinterleave(rows: Int, half: Int, x: UnsafePointer<Float>, a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let (pa, pb, px) = (a + r * half, b + r * half, x + r * 2 * half)
            for i in 0..<half { pa[i] = px[2 * i]; pb[i] = px[2 * i + 1] }
        }
    }

    /// The channel split of a stride-1 unit: first and second halves of each row.
    public static func split(rows: Int, half: Int, x: UnsafePointer<Float>, first: UnsafeMutablePointer<Float>, second: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            (first + r * half).update(from: x + r * 2 * half, count: half)
            (second + r * half).update(from: x + r * 2 * half + half, count: half)
        }
    }

    /// The inverse of `split` (its gradient): rows of first then second half.
    public static func join(rows: Int, half: Int, first: UnsafePointer<Float>, second: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            (x + r * 2 * half).update(from: first + r * half, count: half)
            (x + r * 2 * half + half).update(from: second + r * half, count: half)
        }
    }
}
