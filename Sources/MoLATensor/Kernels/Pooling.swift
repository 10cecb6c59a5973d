/// Pooling over channels-last images (N×H×W×C).
public enum Pooling {
    public struct Shape: Equatable, Sendable {
        public var batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int
        public init(batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int = 0) {
            self.batch = batch; self.height = height; self.width = width; self.channels = channels
            self.kernel = kernel; self.stride = stride; self.padding = padding
        }
        public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
        public var inputCount: Int { batch * height * width * channels }
        public var outputCount: Int { batch * outHeight * outWidth * channels }
    }

    /// Max pooling; `argmax` records the input index each output came from (for backward).
    public static func maxForward(_ s: Shape, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
        let c = s.channels
        for n in 0..<s.batch { for oy in 0..<s.outHeight { for ox in 0..<s.outWidth {
            let o = ((n * s.outHeight + oy) * s.outWidth + ox) * c
            for j in 0..<c { y[o + j] = -.infinity; argmax[o + j] = -1 }
            for ky in 0..<s.kernel {
                let iy = oy * s.stride - s.padding + ky
                guard iy >= 0, iy < s.height else { continue }
                for kx in 0..<s.kernel {
                    let ix = ox * s.stride - s.padding + kx
                    guard ix >= 0, ix < s.width else { continue }
                    let i = ((n * s.height + iy) * s.width + ix) * c
                    for j in 0..<c where x[i + j] > y[o + j] { y[o + j] = x[i + j]; argmax[o + j] = Int32(i + j) }
                }
            }
        } } }
    }

    /// dx (overwritten) receives each dy at the input its output came from.
    public static func maxBackward(_ s: Shape, dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, dx: UnsafeMutablePointer<Float>) {
        dx.update(repeating: 0, count: s.inputCount)
        for o in 0..<s.outputCount where argmax[o] >= 0 { dx[Int(argmax[o])] += dy[o] }
    }

    /// Average pooling over each window's valid (unpadded) inputs.
    public static func averageForward(_ s: Shape, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        window(s) { o, inputs in
            let scale = 1 / Float(inputs.count)
            for j in 0..<s.channels {
                var acc: Float = 0
                for i in inputs { acc += x[i + j] }
                y[o + j] = acc * scale
            }
        }
    }

    /// dx (overwritten): each dy shared equally by the inputs of its window.
    public static func averageBackward(_ s: Shape, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        dx.update(repeating: 0, count: s.inputCount)
        window(s) { o, inputs in
            let scale = 1 / Float(inputs.count)
            for i in inputs { for j in 0..<s.channels { dx[i + j] += dy[o + j] * scale } }
        }
    }

    /// Calls `body(outputOffset, inputOffsets)` for each output pixel's window.
    static func window(_ s: Shape, _ body: (Int, [Int]) -> Void) {
        for n in 0..<s.batch { for oy in 0..<s.outHeight { for ox in 0..<s.outWidth {
            var inputs: [Int] = []
            for ky in 0..<s.kernel { for kx in 0..<s.kernel {
                let iy = oy * s.stride - s.padding + ky, ix = ox * s.stride - s.padding + kx
                if iy >= 0, iy < s.height, ix >= 0, ix < s.width { inputs.append(((n * s.height + iy) * s.width + ix) * s.channels) }
            } }
            body(((n * s.outHeight + oy) * s.outWidth + ox) * s.channels, inputs)
        } } }
    }

    /// y[n][c] = mean over the image's pixels of x[n][·][c] (N×P×C → N×C, P = H·W).
    public static func globalAverageForward(batch: Int, pixels p: Int, channels c: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let scale = 1 / Float(p)
        for n in 0..<batch {
            let yn = y + n * c
            yn.update(repeating: 0, count: c)
            for q in 0..<p { add(c, from: x + (n * p + q) * c, to: yn) }
            for j in 0..<c { yn[j] *= scale }
        }
    }

    /// dx (overwritten) = dy / P broadcast over each image's pixels.
    public static func globalAverageBackward(batch: Int, pixels p: Int, channels c: Int, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let scale = 1 / Float(p)
        for n in 0..<batch {
            for q in 0..<p {
                let d = dx + (n * p + q) * c
                for j in 0..<c { d[j] = dy[n * c + j] * scale }
            }
        }
    }
}
