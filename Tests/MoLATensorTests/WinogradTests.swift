import Testing
import MoLATensor

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) against the plain loops on odd shapes (every
/// edge case of partial tiles), and against float64 direct convolution on every stride-1
/// 3×3 layer shape of ResNet-18 and resnet-mini (the float32 error bound).
@Suite struct WinogradTests {
    static let oddShapes: [ConvShape] = [
        ConvShape(batch: 2, height: 7, width: 5, inChannels: 8, outChannels: 24, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 3, height: 4, width: 9, inChannels: 16, outChannels: 8, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 1, height: 1, width: 3, inChannels: 8, outChannels: 40, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 2, height: 6, width: 10, inChannels: 8, outChannels: 16, kernel: 3, stride: 1, padding: 1),
    ]

    /// The engine running `variant` for every eligible shape (`.off`: the im2col path).
    static func engine(_ variant: WinogradChoice) -> Engine { Engine(winograd: variant, winogradMinTiles: 0) }

    @Test(arguments: oddShapes, [WinogradChoice.f2, .f4])
    func everyPassMatchesThePlainLoops(_ s: ConvShape, _ variant: WinogradChoice) {
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount), dy = g.random(s.outputCount)
        var y = [Float](repeating: .nan, count: s.outputCount), dx = [Float](repeating: .nan, count: s.inputCount)
        let winograd = Self.engine(variant)
        #expect(Winograd.tile(s, engine: winograd) == (variant == .f4 ? 4 : 2))
        Conv2D.forward(s, x: x, w: w, y: &y, engine: winograd)
        Conv2D.inputGradient(s, w: w, dy: dy, dx: &dx, engine: winograd)
        expectClose(y, referenceConv(s, x.map(Double.init), w.map(Double.init)), "winograd forward \(s)")
        // dx·v summed = dy·conv(v): check the adjoint against the reference convolution.
        var wantDx = [Double](repeating: 0, count: s.inputCount)
        for i in 0..<s.inputCount {
            var unit = [Double](repeating: 0, count: s.inputCount)
            unit[i] = 1
            let response = referenceConv(s, unit, w.map(Double.init))
            wantDx[i] = zip(response, dy).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        expectClose(dx, wantDx, "winograd input gradient \(s)")
        // dw = Σ x·dy over each filter tap's pixel pairs, onto a nonzero start.
        let before = g.random(s.weightCount)
        var dw = before, overwritten = g.random(s.weightCount)
        Conv2D.weightGradient(s, x: x, dy: dy, dw: &dw, engine: winograd)
        Conv2D.weightGradient(s, x: x, dy: dy, dw: &overwritten, accumulate: false, engine: winograd)
        var wantDw = before.map(Double.init)
        for n in 0..<s.batch { for oy in 0..<s.height { for ox in 0..<s.width { for ky in 0..<3 { for kx in 0..<3 {
            let iy = oy - 1 + ky, ix = ox - 1 + kx
            guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
            for ci in 0..<s.inChannels { for co in 0..<s.outChannels {
                wantDw[((ky * 3 + kx) * s.inChannels + ci) * s.outChannels + co] +=
                    Double(x[((n * s.height + iy) * s.width + ix) * s.inChannels + ci]) * Double(dy[((n * s.height + oy) * s.width + ox) * s.outChannels + co])
            } }
        } } } } }
        expectClose(dw, wantDw, "winograd weight gradient \(s)")
        expectClose(overwritten, zip(wantDw, before).map { $0 - Double($1) }, "winograd weight gradient, overwritten \(s)")
    }

    /// Every batch size from 1 to 20 on a 12×12 map (1 to 20 partial blocks of tiles, split
    /// over 1 or 2 threads), each call after one on a larger batch of other values so stale
    /// scratch would show: each pass of each tile size against im2col within 1e-5 of the
    /// result's scale. A task group's or a rank's share of a batch takes any of these sizes.
    @Test(arguments: [WinogradChoice.f2, .f4], [1, 2])
    func everyBatchSizeMatchesIm2col(_ variant: WinogradChoice, _ threads: Int) {
        let winograd = Engine(threads: threads, winograd: variant, winogradMinTiles: 0), plain = Engine(threads: threads, winograd: .off)
        var g = GradCheck()
        for batch in 1...20 {
            let s = ConvShape(batch: batch, height: 12, width: 12, inChannels: 8, outChannels: 16, kernel: 3, stride: 1, padding: 1)
            var larger = s
            larger.batch = 24
            let (x, w, dy) = (g.random(s.inputCount), g.random(s.weightCount), g.random(s.outputCount))
            let (bx, bdy) = (g.random(larger.inputCount), g.random(larger.outputCount))
            func passes(_ e: Engine) -> [[Float]] {
                var (by, bdx, bdw) = ([Float](repeating: 0, count: larger.outputCount), [Float](repeating: 0, count: larger.inputCount), [Float](repeating: 0, count: s.weightCount))
                var (y, dx, dw) = ([Float](repeating: 0, count: s.outputCount), [Float](repeating: 0, count: s.inputCount), [Float](repeating: 0, count: s.weightCount))
                Conv2D.forward(larger, x: bx, w: w, y: &by, engine: e)
                Conv2D.forward(s, x: x, w: w, y: &y, engine: e)
                Conv2D.inputGradient(larger, w: w, dy: bdy, dx: &bdx, engine: e)
                Conv2D.inputGradient(s, w: w, dy: dy, dx: &dx, engine: e)
                Conv2D.weightGradient(larger, x: bx, dy: bdy, dw: &bdw, accumulate: false, engine: e)
                Conv2D.weightGradient(s, x: x, dy: dy, dw: &dw, accumulate: false, engine: e)
                return [y, dx, dw]
            }
            for (name, (ours, want)) in zip(["forward", "input gradient", "weight gradient"], zip(passes(winograd), passes(plain))) {
                let scale = Double(want.map(abs).max() ?? 1)
                let worst = zip(ours, want).map { Double(abs($0 - $1)) }.max()! / scale
                #expect(worst < 1e-5, "\(variant) \(name), batch \(batch), \(threads) threads: \(worst)")
            }
        }
    }

    /// `auto` follows the measured rule: F(4×4) where it saves 1.5× F(2×2)'s multiplies with
    /// its padding counted, F(2×2) on 14×14 maps, and F(2×2) for a weight gradient with
    /// fewer F(4×4) tiles than channels.
    @Test func autoPicksTheTileThatWins() {
        func shape(_ side: Int, _ channels: Int, batch: Int = 128) -> ConvShape {
            ConvShape(batch: batch, height: side, width: side, inChannels: channels, outChannels: channels, kernel: 3, stride: 1, padding: 1)
        }
        let auto = Engine(winograd: .auto, winogradMinTiles: 1)
        func tiles(_ s: ConvShape) -> [Int?] { Winograd.Pass.allCases.map { Winograd.tile(s, engine: auto, pass: $0) } }
        #expect(tiles(shape(28, 64)) == [4, 4, 4])
        #expect(tiles(shape(14, 128)) == [2, 2, 2])
        #expect(tiles(shape(7, 256)) == [4, 4, 4])
        #expect(tiles(shape(4, 512)) == [4, 4, 2])
        #expect(tiles(shape(28, 16)) == [4, 4, 4])
        #expect(Winograd.tile(shape(4, 512), engine: Engine(winograd: .f2, winogradMinTiles: 1)) == 2)
        #expect(Winograd.tile(shape(4, 512), engine: Engine(winograd: .off)) == nil)
    }

    /// Every stride-1 3×3 layer shape of ResNet-18 (CIFAR stem, 28×28 input: 28×28×64 to
    /// 4×4×512) and resnet-mini (28×28×16 to 7×7×64), batch 2, weights at He scale: each
    /// pass of each variant against the float64 direct convolution. The error is the
    /// largest absolute difference over the largest magnitude of the float64 result.
    /// Bounds: 5e-6 for im2col and F(2×2), 5e-5 for F(4×4), whose points ±2 scale the
    /// rounding of its transforms (`swift test --filter WinogradTests` prints the measured
    /// errors of every pass and shape).
    @Test(arguments: [(28, 64), (14, 128), (7, 256), (4, 512), (28, 16), (14, 32), (7, 64)])
    func errorAgainstFloat64IsBounded(side: Int, channels: Int) {
        let s = ConvShape(batch: 2, height: side, width: side, inChannels: channels, outChannels: channels, kernel: 3, stride: 1, padding: 1)
        var g = GradCheck()
        let scale = Float((2.0 / Double(9 * channels)).squareRoot())
        let x = g.random(s.inputCount), w = g.random(s.weightCount).map { $0 * scale }, dy = g.random(s.outputCount)
        let (xd, wd, dyd) = (x.map(Double.init), w.map(Double.init), dy.map(Double.init))
        // dx: the same convolution of dy with the filters flipped and the channels swapped.
        let swapped = ConvShape(batch: 2, height: side, width: side, inChannels: channels, outChannels: channels, kernel: 3, stride: 1, padding: 1)
        var flipped = [Double](repeating: 0, count: s.weightCount)
        for tap in 0..<9 { for ci in 0..<channels { for co in 0..<channels {
            flipped[(tap * channels + co) * channels + ci] = wd[((8 - tap) * channels + ci) * channels + co]
        } } }
        let want = (referenceConv(s, xd, wd), referenceConv(swapped, dyd, flipped), Self.directWeightGradient(s, xd, dyd))
        func error(_ ours: [Float], _ reference: [Double]) -> Double {
            let scale = reference.map(abs).max() ?? 1
            return zip(ours, reference).map { abs(Double($0) - $1) }.max()! / scale
        }
        var line = "winograd error \(side)×\(side)×\(channels):"
        for (variant, bound) in [(WinogradChoice.off, 5e-6), (.f2, 5e-6), (.f4, 5e-5)] {
            let engine = Self.engine(variant)
            #expect(Winograd.applies(s, engine: engine) == (variant != .off))
            var y = [Float](repeating: .nan, count: s.outputCount), dx = [Float](repeating: .nan, count: s.inputCount)
            var dw = [Float](repeating: 0, count: s.weightCount)
            Conv2D.forward(s, x: x, w: w, y: &y, engine: engine)
            Conv2D.inputGradient(s, w: w, dy: dy, dx: &dx, engine: engine)
            Conv2D.weightGradient(s, x: x, dy: dy, dw: &dw, engine: engine)
            let errors = [error(y, want.0), error(dx, want.1), error(dw, want.2)]
            line += " \(variant.rawValue) " + errors.map { String(format: "%.1e", $0) }.joined(separator: "/")
            #expect(errors.allSatisfy { $0 < bound }, "\(variant) on \(s): forward, input, weight gradient errors \(errors) over \(bound)")
        }
        print(line + " (forward/input gradient/weight gradient)")
    }

    /// dw[tap, ci, co] = Σ over pixels of x at the tap's offset times dy, in float64.
    static func directWeightGradient(_ s: ConvShape, _ x: [Double], _ dy: [Double]) -> [Double] {
        var dw = [Double](repeating: 0, count: s.weightCount)
        let (c, k) = (s.inChannels, s.outChannels)
        for n in 0..<s.batch { for oy in 0..<s.height { for ox in 0..<s.width { for ky in 0..<3 { for kx in 0..<3 {
            let iy = oy - 1 + ky, ix = ox - 1 + kx
            guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
            let xi = ((n * s.height + iy) * s.width + ix) * c, yi = ((n * s.height + oy) * s.width + ox) * k, wi = (ky * 3 + kx) * c * k
            for ci in 0..<c {
                let xv = x[xi + ci]
                for co in 0..<k { dw[wi + ci * k + co] += xv * dy[yi + co] }
            }
        } } } } }
        return dw
    }
}
