import Testing
import MoLATensor

/// Winograd F(2×2, 3×3) against the plain loops on odd shapes, and against the im2col
/// path on every stride-1 3×3 layer shape of ResNet-18 (float32 error bound).
@Suite struct WinogradTests {
    static let oddShapes: [ConvShape] = [
        ConvShape(batch: 2, height: 7, width: 5, inChannels: 8, outChannels: 24, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 3, height: 4, width: 9, inChannels: 16, outChannels: 8, kernel: 3, stride: 1, padding: 1),
        ConvShape(batch: 1, height: 1, width: 3, inChannels: 8, outChannels: 40, kernel: 3, stride: 1, padding: 1),
    ]

    /// The engine with Winograd on for every eligible shape, or off.
    static func engine(winograd: Bool) -> Engine { Engine(winograd: winograd, winogradMinTiles: 0) }

    @Test(arguments: oddShapes)
    func forwardAndInputGradientMatchThePlainLoops(_ s: ConvShape) {
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount), dy = g.random(s.outputCount)
        var y = [Float](repeating: .nan, count: s.outputCount), dx = [Float](repeating: .nan, count: s.inputCount)
        let winograd = Self.engine(winograd: true)
        #expect(Winograd.applies(s, engine: winograd))
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

    @Test(arguments: [(28, 64), (14, 128), (7, 256), (4, 512)])
    func resnet18LayersAgreeWithIm2col(side: Int, channels: Int) {
        let s = ConvShape(batch: 3, height: side, width: side, inChannels: channels,
                          outChannels: channels, kernel: 3, stride: 1, padding: 1)
        var g = GradCheck()
        let x = g.random(s.inputCount), w = g.random(s.weightCount).map { $0 * 0.1 }, dy = g.random(s.outputCount)
        func passes(_ engine: Engine) -> ([Float], [Float], [Float]) {
            var y = [Float](repeating: .nan, count: s.outputCount), dx = [Float](repeating: .nan, count: s.inputCount)
            var dw = [Float](repeating: 0, count: s.weightCount)
            Conv2D.forward(s, x: x, w: w, y: &y, engine: engine)
            Conv2D.inputGradient(s, w: w, dy: dy, dx: &dx, engine: engine)
            Conv2D.weightGradient(s, x: x, dy: dy, dw: &dw, engine: engine)
            return (y, dx, dw)
        }
        let (fast, direct) = (passes(Self.engine(winograd: true)), passes(Self.engine(winograd: false)))
        #expect(Winograd.applies(s, engine: Self.engine(winograd: true)))
        // Both are float32 sums of up to 9·C products (measured worst: 1.5e-5 at 4×4×512).
        expectClose(fast.0, direct.0.map(Double.init), tolerance: 5e-5, "forward \(s)")
        expectClose(fast.1, direct.1.map(Double.init), tolerance: 5e-5, "input gradient \(s)")
        expectClose(fast.2, direct.2.map(Double.init), tolerance: 5e-5, "weight gradient \(s)")
    }
}
