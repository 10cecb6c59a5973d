import MoLASupport
import MoLATensor
import Testing

/// End to end on raw kernels: conv3×3 → ReLU → conv3×3/2 → ReLU → linear, SGD with
/// momentum, must fit 64 random images with random labels perfectly.
@Suite struct OverfitTests {
    @Test func twoLayerCNNMemorisesABatch() {
        let (n, h, classes) = (64, 8, 10)
        let s1 = ConvShape(batch: n, height: h, width: h, inChannels: 1, outChannels: 8, kernel: 3, stride: 1, padding: 1)
        let s2 = ConvShape(batch: n, height: h, width: h, inChannels: 8, outChannels: 16, kernel: 3, stride: 2, padding: 1)
        let features = s2.outHeight * s2.outWidth * 16
        let store = ParameterStore()
        let w1 = store.add("w1", shape: [3, 3, 1, 8], .kaimingNormal(fan: 9, gain: Float(2).squareRoot()))
        let w2 = store.add("w2", shape: [3, 3, 8, 16], .kaimingNormal(fan: 72, gain: Float(2).squareRoot()))
        let fc = store.add("fc", shape: [features, classes], .kaimingUniform(fanIn: features, a: Float(5).squareRoot()))
        let fcb = store.add("fc.bias", shape: [classes], .zeros)
        store.allocate(seed: 4)
        var g = RandomGenerator(seed: 5)
        let x = (0..<(n * h * h)).map { _ in g.uniform(0, 1) }
        let labels = (0..<n).map { _ in Int32(g.nextInt(below: classes)) }
        var a1 = [Float](repeating: 0, count: s1.outputCount), a2 = [Float](repeating: 0, count: s2.outputCount)
        var logits = [Float](repeating: 0, count: n * classes), dLogits = logits
        var d2 = a2, d1 = a1
        var opt = SGD(momentum: 0.9)
        var losses: [Double] = []
        var accuracy = 0.0
        for _ in 0..<300 {
            store.zeroGradients()
            Conv2D.forward(s1, x: x, w: store.value(w1), y: &a1)
            ReLU.forward(a1.count, x: a1, y: &a1)
            Conv2D.forward(s2, x: a1, w: store.value(w2), y: &a2)
            ReLU.forward(a2.count, x: a2, y: &a2)
            Linear.forward(rows: n, inputs: features, outputs: classes, x: a2, w: store.value(fc), b: store.value(fcb), y: &logits)
            losses.append(CrossEntropy.loss(rows: n, classes: classes, logits: logits, labels: labels, dLogits: &dLogits))
            let predicted = CrossEntropy.argmax(rows: n, classes: classes, logits: logits)
            accuracy = Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(n)
            if accuracy == 1 && losses.last! < 0.05 { break }
            Linear.backward(rows: n, inputs: features, outputs: classes, x: a2, w: store.value(fc), dy: dLogits, dx: &d2,
                            dw: store.gradient(fc), db: store.gradient(fcb))
            ReLU.backward(a2.count, y: a2, dy: d2, dx: &d2)
            Conv2D.backward(s2, x: a1, w: store.value(w2), dy: d2, dx: &d1, dw: store.gradient(w2))
            ReLU.backward(a1.count, y: a1, dy: d1, dx: &d1)
            Conv2D.backward(s1, x: x, w: store.value(w1), dy: d1, dx: nil, dw: store.gradient(w1))
            opt.step(store, learningRate: 0.05)
        }
        #expect(accuracy == 1, "accuracy \(accuracy) after \(losses.count) steps, loss \(losses.last!)")
        #expect(losses.last! < losses.first! / 10)
        #expect(losses.count < 300)
    }
}
