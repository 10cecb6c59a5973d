/// Resampling and channel conversion, to bring every source image to the dataset's shape.
///
/// `auto` uses area averaging when an axis shrinks (each output pixel is the exact mean of
/// the input area it covers, fractional pixels weighted by coverage, like OpenCV's
/// INTER_AREA) and bilinear interpolation when it grows (pixel centres at half-integers,
/// edges clamped, like OpenCV's INTER_LINEAR and PyTorch's align_corners=False).
/// Axes are resampled separately; results are rounded to the nearest integer.
public enum ResizeFilter: String, Codable, CaseIterable, Sendable {
    case auto, area, bilinear, nearest
}

/// A precomputed resampler from one input size to one output size.
public struct Resampler: Sendable {
    /// For one axis: for each output index, the first input index and its weights.
    struct Axis: Sendable {
        var starts: [Int] = []
        var weights: [[Float]] = []
        var identity = false

        init(from n: Int, to m: Int, filter: ResizeFilter) {
            if n == m { identity = true; return }
            let scale = Double(n) / Double(m)
            var f = filter
            if f == .auto { f = m < n ? .area : .bilinear }
            for j in 0..<m {
                switch f {
                case .area:
                    let lo = Double(j) * scale, hi = Double(j + 1) * scale
                    let first = Int(lo), last = min(n - 1, Int((hi - 1e-9).rounded(.down)))
                    var w: [Float] = []
                    for i in first...max(first, last) {
                        let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
                        w.append(Float(max(0, overlap) / scale))
                    }
                    starts.append(first); weights.append(w)
                case .bilinear:
                    let x = min(max((Double(j) + 0.5) * scale - 0.5, 0), Double(n - 1))
                    let i0 = min(Int(x), n - 1), frac = x - Double(i0)
                    if i0 + 1 < n && frac > 0 {
                        starts.append(i0); weights.append([Float(1 - frac), Float(frac)])
                    } else {
                        starts.append(i0); weights.append([1])
                    }
                case .nearest, .auto:
                    starts.append(min(n - 1, Int((Double(j) + 0.5) * scale))); weights.append([1])
                }
            }
        }
    }

    let inHeight: Int, inWidth: Int
    let out: ImageShape
    let rows: Axis, cols: Axis

    public init(inHeight: Int, inWidth: Int, to out: ImageShape, filter: ResizeFilter) {
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.out = out
        rows = Axis(from: inHeight, to: out.height, filter: filter)
        cols = Axis(from: inWidth, to: out.width, filter: filter)
    }

    /// Resamples `img` (which must have this resampler's input size and `out.channels`
    /// channels) into `dst` (out.pixelCount bytes). Columns first into a Float buffer
    /// (inHeight × outWidth × c), then rows.
    public func apply(_ img: RawImage, into dst: UnsafeMutablePointer<UInt8>) {
        precondition(img.height == inHeight && img.width == inWidth && img.channels == out.channels)
        let c = out.channels, ow = out.width, rowLen = ow * c
        if rows.identity && cols.identity {
            img.pixels.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: $0.count) }
            return
        }
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: inHeight * rowLen)
        defer { tmp.deallocate() }
        img.pixels.withUnsafeBufferPointer { srcBuf in
            let src = srcBuf.baseAddress!
            for y in 0..<inHeight {
                let srow = src + y * inWidth * c, trow = tmp + y * rowLen
                if cols.identity {
                    for i in 0..<rowLen { trow[i] = Float(srow[i]) }
                    continue
                }
                for x in 0..<ow {
                    let s = cols.starts[x]
                    cols.weights[x].withUnsafeBufferPointer { w in
                        for ch in 0..<c {
                            var acc: Float = 0
                            for k in 0..<w.count { acc += w[k] * Float(srow[(s + k) * c + ch]) }
                            trow[x * c + ch] = acc
                        }
                    }
                }
            }
        }
        for y in 0..<out.height {
            let d = dst + y * rowLen
            if rows.identity {
                let t = tmp + y * rowLen
                for i in 0..<rowLen { d[i] = clampRound(t[i]) }
                continue
            }
            let t = tmp + rows.starts[y] * rowLen
            rows.weights[y].withUnsafeBufferPointer { w in
                for i in 0..<rowLen {
                    var acc: Float = 0
                    for k in 0..<w.count { acc += w[k] * t[k * rowLen + i] }
                    d[i] = clampRound(acc)
                }
            }
        }
    }
}

@inline(__always) func clampRound(_ v: Float) -> UInt8 {
    UInt8(min(255, max(0, v.rounded())))
}

public enum ChannelConversion {
    /// Converts 8-bit grey, grey+alpha, RGB or RGBA pixels (`img.channels` 1–4) to 1 or 3
    /// channels as Pillow's `convert("L")` / `convert("RGB")` do: alpha is dropped (not
    /// composited), grey is repeated, and colour becomes grey by ITU-R BT.601 luma on the
    /// 8-bit values in Pillow's integer form, (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16 —
    /// so a model trained on our shards sees what torchvision preprocessing gives it.
    public static func convert(_ img: RawImage, to channels: Int) -> RawImage {
        if img.channels == channels { return img }
        let n = img.height * img.width
        var out = [UInt8](repeating: 0, count: n * channels)
        let c = img.channels
        for i in 0..<n {
            let p = i * c
            if channels == 3 {
                if c >= 3 { for k in 0..<3 { out[i * 3 + k] = img.pixels[p + k] } }
                else { let v = img.pixels[p]; out[i * 3] = v; out[i * 3 + 1] = v; out[i * 3 + 2] = v }
            } else {
                if c >= 3 { out[i] = luma(img.pixels[p], img.pixels[p + 1], img.pixels[p + 2]) } else { out[i] = img.pixels[p] }
            }
        }
        return RawImage(height: img.height, width: img.width, channels: channels, pixels: out)
    }

    /// BT.601 luma of 8-bit R, G, B exactly as Pillow computes it (libImaging/Convert.c).
    @inline(__always)
    public static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        let red: UInt32 = 19595 * UInt32(r), green: UInt32 = 38470 * UInt32(g), blue: UInt32 = 7471 * UInt32(b)
        return UInt8((red + green + blue + 0x8000) >> 16)
    }
}
