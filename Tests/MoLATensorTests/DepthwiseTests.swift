import Testing
import MoLATensor

/// ShuffleNet V2's kernels: depthwise convolution against a Float64 loop and finite
/// differences; the channel interleave and split against their definitions and inverses.
@Suite struct DepthwiseTests {
    static func reference(_ s: Depthwise.Shape, _ x: [Double], _ w: [Double]) -> [Double] {
        var y = [Double](repeating: 0, count: s.batch * s.outHeight * s.outWidth * s.channels)
        for n in 0..<s.batch { for oy in 0..<s.outHeight { for ox in 0..<s.outWidth { for c in 0..<s.channels {
            var acc = 0.0
            for i in 0..<s.kernel { for j in 0..<s.kernel {
                let iy = oy * s.stride - s.padding + i, ix = ox * s.stride - s.padding + j
                if iy >= 0, iy < s.height, ix >= 0, ix < s.width {
                    acc += x[((n * s.height + iy) * s.width + ix) * s.channels + c] * w[(i * s.kernel + j) * s.channels + c]
                }
            } }
            y[((n * s.outHeight + oy) * s.outWidth + ox) * s.channels + c] = acc
        } } } }
        return y
    }

    @Test(arguments: [Depthwise.Shape(batch: 2, height: 7, width: 6, channels: 5, kernel: 3, stride: 1, padding: 1),
                      Depthwise.Shape(batch: 3, height: 8, width: 9, channels: 16, kernel: 3, stride: 2, padding: 1),
                      Depthwise.Shape(batch: 1, height: 5, width: 5, channels: 3, kernel: 5, stride: 2, padding: 2)])
    func depthwiseMatchesTheLoopAndItsGradients(_ s: Depthwise.Shape) {
        var g = GradCheck()
        let x = g.random(s.batch * s.height * s.width * s.channels), w = g.random(s.kernel * s.kernel * s.channels)
        let outCount = s.batch * s.outHeight * s.outWidth * s.channels
        let dy = g.random(outCount)
        for threads in [1, 2] {
            var y = [Float](repeating: 0, count: outCount)
            Depthwise.forward(s, x: x, w: w, y: &y, engine: Engine(threads: threads))
            expectClose(y, Self.reference(s, x.map(Double.init), w.map(Double.init)), "depthwise forward")
            var dx = [Float](repeating: 7, count: x.count), dw = [Float](repeating: 0, count: w.count)
            Depthwise.backward(s, x: x, w: w, dy: dy, dx: &dx, dw: &dw, engine: Engine(threads: threads))
            g.check(inputs: [x, w], dy: dy, analytic: [dx, dw], "depthwise \(s)") { Self.reference(s, $0[0], $0[1]) }
        }
    }

    @Test func interleaveAndSplitAreInverses() {
        var g = GradCheck()
        let (rows, half) = (5, 3)
        let a = g.random(rows * half), b = g.random(rows * half)
        var out = [Float](repeating: 0, count: rows * 2 * half)
        ChannelShuffle.interleave(rows: rows, half: half, a: a, b: b, into: &out)
        #expect(out[2 * half + 0] == a[half] && out[2 * half + 1] == b[half] && out[5] == b[2])
        var a2 = [Float](repeating: 0, count: a.count), b2 = a2
        ChannelShuffle.deinterleave(rows: rows, half: half, x: out, a: &a2, b: &b2)
        #expect(a2 == a && b2 == b)
        var first = [Float](repeating: 0, count: a.count), second = first, back = out
        ChannelShuffle.split(rows: rows, half: half, x: out, first: &first, second: &second)
        #expect(first[half] == out[2 * half] && second[0] == out[half])
        ChannelShuffle.join(rows: rows, half: half, first: first, second: second, into: &back)
        #expect(back == out)
    }
}
