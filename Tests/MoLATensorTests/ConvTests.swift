import Testing
import MoLATensor

/// Convolution in Float64, the plain way: the reference for forward and gradients.
func referenceConv(_ s: ConvShape, _ x: [Double], _ w: [Double]) -> [Double] {
    var y = [Double](repeating: 0, count: s.outputCount)
    for n in 0..<s.batch { for oy in 0..<s.outHeight { for ox in 0..<s.outWidth { for co in 0..<s.outChannels {
        var acc = 0.0
        for ky in 0..<s.kernel { for kx in 0..<s.kernel {
            let iy = oy * s.stride - s.padding + ky, ix = ox * s.stride - s.padding + kx
            guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
            for ci in 0..<s.inChannels {
                acc += x[((n * s.height + iy) * s.width + ix) * s.inChannels + ci]
                    * w[((ky * s.kernel + kx) * s.inChannels + ci) * s.outChannels + co]
            }
        } }
        y[((n * s.outHeight + oy) * s.outWidth + ox) * s.outChannels + co] = acc
    } } } }
    return y
}

@Suite struct ConvTests {
    static let shapes: [ConvShape] = [
        ConvShape(batch: 2, height: 7, width: 5, inChannels: 3, outChannels: 17, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 1, height: 9, width: 9, inChannels: 16, outChannels: 16, kernel: 3, stride: 2, padding: 1),
        ConvShape(batch: 3, height: 6, width: 6, inChannels: 5, outChannels: 33, kernel: 1, stride: 1, padding: 0),
        ConvShape(batch: 2, height: 8, width: 7, inChannels: 4, outChannels: 7, kernel: 1, stride: 2, padding: 0),
        ConvShape(batch: 1, height: 13, width: 11, inChannels: 2, outChannels: 9, kernel: 7, stride: 2, padding: 3),
        ConvShape(batch: 2, height: 5, width: 5, inChannels: 1, outChannels: 16, kernel: 3, stride: 1, padding: 0),
        ConvShape(batch: 1, height: 1, width: 1, inChannels: 65, outChannels: 1, kernel: 1, stride: 1, padding: 0),
    ]

    @Test(arguments: shapes)
    func forwardMatchesTheNaiveLoop(_ s: ConvShape) {
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount)
        var y = [Float](repeating: .nan, count: s.outputCount)
        Conv2D.forward(s, x: x, w: w, y: &y)
        expectClose(y, referenceConv(s, x.map(Double.init), w.map(Double.init)), "conv \(s)")
    }

    @Test(arguments: shapes)
    func gradientsMatchFiniteDifferences(_ s: ConvShape) {
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount), dy = g.random(s.outputCount)
        var dx = [Float](repeating: .nan, count: s.inputCount)
        let before = g.random(s.weightCount)
        var dw = before  // backward accumulates into dw
        Conv2D.backward(s, x: x, w: w, dy: dy, dx: &dx, dw: &dw)
        let dwOnly = zip(dw, before).map { $0 - $1 }
        g.check(inputs: [x, w], dy: dy, analytic: [dx, dwOnly], "conv \(s)") { referenceConv(s, $0[0], $0[1]) }
    }

    @Test func resultsDoNotDependOnTheThreadCountForward() {
        let s = ConvShape(batch: 5, height: 12, width: 12, inChannels: 8, outChannels: 16, kernel: 3, stride: 1, padding: 1)
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount)
        var y1 = [Float](repeating: 0, count: s.outputCount), y2 = y1
        Conv2D.forward(s, x: x, w: w, y: &y1, engine: Engine(threads: 1))
        Conv2D.forward(s, x: x, w: w, y: &y2, engine: Engine(threads: 2))
        #expect(y1 == y2)
    }

    @Test func backwardIsDeterministicAtAFixedThreadCount() {
        let s = ConvShape(batch: 5, height: 12, width: 12, inChannels: 8, outChannels: 16, kernel: 3, stride: 2, padding: 1)
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount), dy = g.random(s.outputCount)
        func grads() -> ([Float], [Float]) {
            var dx = [Float](repeating: 0, count: s.inputCount), dw = [Float](repeating: 0, count: s.weightCount)
            Conv2D.backward(s, x: x, w: w, dy: dy, dx: &dx, dw: &dw, engine: Engine(threads: 2))
            return (dx, dw)
        }
        let (a, b) = (grads(), grads())
        #expect(a.0 == b.0 && a.1 == b.1)
    }

    /// A batch of no images (a task none of a rank's rows belong to) adds nothing to the
    /// weight gradient, or writes zeros when not accumulating, on every path, even after a
    /// call that left its partial sums in the scratch: a data-parallel rank once added the
    /// previous layer's Winograd partials.
    @Test(arguments: [WinogradChoice.off, .f2, .f4], [1, 2])
    func anEmptyBatchAddsNothingToTheWeightGradient(_ variant: WinogradChoice, _ threads: Int) {
        let full = ConvShape(batch: 4, height: 12, width: 12, inChannels: 8, outChannels: 8, kernel: 3, stride: 1, padding: 1)
        var empty = full
        empty.batch = 0
        let engine = Engine(threads: threads, winograd: variant, winogradMinTiles: 0)
        var g = GradCheck()
        let x = g.random(full.inputCount), dy = g.random(full.outputCount)
        var scratchFiller = [Float](repeating: 0, count: full.weightCount)
        Conv2D.weightGradient(full, x: x, dy: dy, dw: &scratchFiller, engine: engine)
        let before = g.random(full.weightCount)
        var dw = before, overwritten = before
        Conv2D.weightGradient(empty, x: x, dy: dy, dw: &dw, engine: engine)
        Conv2D.weightGradient(empty, x: x, dy: dy, dw: &overwritten, accumulate: false, engine: engine)
        let (unchanged, zeroed) = (dw == before, overwritten.allSatisfy { $0 == 0 })
        #expect(unchanged, "\(variant), \(threads) threads: an empty batch changed the accumulated gradient")
        #expect(zeroed, "\(variant), \(threads) threads: an empty batch's overwritten gradient is not zero")
    }
}

/// The shapes of ResNet-18's deep layers, where the weight gradient runs in several
/// chunks per thread and the thread partials are summed: every pass against plain loops.
@Suite struct DeepConvTests {
    @Test(arguments: [
        ConvShape(batch: 6, height: 4, width: 4, inChannels: 512, outChannels: 70, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 4, height: 7, width: 7, inChannels: 96, outChannels: 64, kernel: 3, stride: 2, padding: 1),
    ])
    func everyPassMatchesThePlainLoops(_ s: ConvShape) {
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount), dy = g.random(s.outputCount)
        var y = [Float](repeating: .nan, count: s.outputCount)
        var dx = [Float](repeating: .nan, count: s.inputCount)
        let before = g.random(s.weightCount)
        var dw = before
        Conv2D.forward(s, x: x, w: w, y: &y, engine: Engine(threads: 2))
        Conv2D.backward(s, x: x, w: w, dy: dy, dx: &dx, dw: &dw, engine: Engine(threads: 2))
        // The plain loops: y = Σ x·w; dx = Σ dy·w; dw = Σ x·dy over the same index sets.
        var wantDx = [Double](repeating: 0, count: s.inputCount), wantDw = before.map(Double.init)
        for n in 0..<s.batch { for oy in 0..<s.outHeight { for ox in 0..<s.outWidth { for co in 0..<s.outChannels {
            let o = ((n * s.outHeight + oy) * s.outWidth + ox) * s.outChannels + co
            for ky in 0..<s.kernel { for kx in 0..<s.kernel {
                let iy = oy * s.stride - s.padding + ky, ix = ox * s.stride - s.padding + kx
                guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
                for ci in 0..<s.inChannels {
                    let i = ((n * s.height + iy) * s.width + ix) * s.inChannels + ci
                    let k = ((ky * s.kernel + kx) * s.inChannels + ci) * s.outChannels + co
                    wantDx[i] += Double(dy[o]) * Double(w[k])
                    wantDw[k] += Double(x[i]) * Double(dy[o])
                }
            } }
        } } } }
        expectClose(y, referenceConv(s, x.map(Double.init), w.map(Double.init)), "forward \(s)")
        expectClose(dx, wantDx, "dx \(s)")
        expectClose(dw, wantDw, "dw \(s)")
    }
}

/// Adapter weights merged while packing give exactly what a merged copy of W gives, and
/// an overwritten weight gradient equals one accumulated onto zeros.
@Suite struct MergedWeightTests {
    @Test(arguments: [
        ConvShape(batch: 3, height: 6, width: 5, inChannels: 7, outChannels: 37, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 2, height: 9, width: 9, inChannels: 64, outChannels: 80, kernel: 3, stride: 2, padding: 1),
    ])
    func mergingWhilePackingEqualsAMergedCopy(_ s: ConvShape) {
        var g = GradCheck()
        let r = 4, scale: Float = 4
        let x = g.random(s.inputCount), w = g.random(s.weightCount), dy = g.random(s.outputCount)
        let a = g.random(s.patch * r), b = g.random(r * s.outChannels)
        var merged = [Float](repeating: 0, count: s.weightCount)
        LowRank.merge(k: s.patch, n: s.outChannels, rank: r, scale: scale, w: w, a: a, b: b, into: &merged)
        var y1 = [Float](repeating: 0, count: s.outputCount), y2 = y1
        var dx1 = [Float](repeating: 0, count: s.inputCount), dx2 = dx1
        Conv2D.forward(s, x: x, w: merged, y: &y1)
        Conv2D.inputGradient(s, w: merged, dy: dy, dx: &dx1)
        w.withUnsafeBufferPointer { wp in a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            let weights = ConvWeights(wp.baseAddress!, adapter: (ap.baseAddress!, bp.baseAddress!, r, scale))
            Conv2D.forward(s, x: x, weights: weights, y: &y2)
            Conv2D.inputGradient(s, weights: weights, dy: dy, dx: &dx2)
        } } }
        #expect(y1 == y2)
        #expect(dx1 == dx2)
        var accumulated = [Float](repeating: 0, count: s.weightCount), overwritten = g.random(s.weightCount)
        Conv2D.weightGradient(s, x: x, dy: dy, dw: &accumulated)
        Conv2D.weightGradient(s, x: x, dy: dy, dw: &overwritten, accumulate: false)
        #expect(accumulated == overwritten)
    }
}
