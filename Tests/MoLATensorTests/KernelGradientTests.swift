import Foundation
import Testing
import MoLATensor

/// Every kernel's forward against a Float64 reference and its backward against central
/// finite differences of that reference, on small odd shapes (batch 1 included).
@Suite struct KernelGradientTests {
    // MARK: batch norm

    static func referenceBatchNorm(rows: Int, c: Int, _ x: [Double], _ g: [Double], _ b: [Double]) -> [Double] {
        var y = [Double](repeating: 0, count: rows * c)
        for j in 0..<c {
            let col = (0..<rows).map { x[$0 * c + j] }
            let mean = col.reduce(0, +) / Double(rows)
            let v = col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rows)
            for r in 0..<rows { y[r * c + j] = (x[r * c + j] - mean) / (v + 1e-5).squareRoot() * g[j] + b[j] }
        }
        return y
    }

    @Test(arguments: [(1 * 3 * 3, 5), (2 * 5 * 7, 16), (700, 3)])
    func batchNormTraining(rows: Int, channels c: Int) {
        var g = GradCheck()
        let x = g.random(rows * c, scale: 2), gamma = g.random(c).map { $0 + 1.5 }, beta = g.random(c), dy = g.random(rows * c)
        var y = [Float](repeating: 0, count: rows * c), mean = [Float](repeating: 0, count: c), inv = mean
        var rm = [Float](repeating: 0, count: c), rv = [Float](repeating: 1, count: c)
        BatchNorm.forwardTrain(rows: rows, channels: c, x: x, gamma: gamma, beta: beta, y: &y, mean: &mean, invStd: &inv,
                               runningMean: &rm, runningVar: &rv, momentum: 0.1)
        expectClose(y, Self.referenceBatchNorm(rows: rows, c: c, x.map(Double.init), gamma.map(Double.init), beta.map(Double.init)),
                    tolerance: 1e-4, "batch norm forward")
        // Running averages: 0.9·old + 0.1·batch (variance unbiased).
        for j in 0..<c {
            let col = (0..<rows).map { Double(x[$0 * c + j]) }
            let m = col.reduce(0, +) / Double(rows)
            let unbiased = col.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(1, rows - 1))
            #expect(abs(Double(rm[j]) - 0.1 * m) < 1e-5 && abs(Double(rv[j]) - (0.9 + 0.1 * unbiased)) < 1e-4)
        }
        var dx = [Float](repeating: 0, count: rows * c), dg = [Float](repeating: 0, count: c), db = dg
        BatchNorm.backward(rows: rows, channels: c, x: x, dy: dy, gamma: gamma, mean: mean, invStd: inv, dx: &dx, dGamma: &dg, dBeta: &db)
        g.check(inputs: [x, gamma, beta], dy: dy, analytic: [dx, dg, db], "batch norm \(rows)×\(c)") {
            Self.referenceBatchNorm(rows: rows, c: c, $0[0], $0[1], $0[2])
        }
    }

    @Test func batchNormWithFusedReLU() {
        var g = GradCheck()
        let (rows, c) = (90, 8)
        let x = g.random(rows * c, scale: 2), gamma = g.random(c).map { $0 + 1.5 }, beta = g.random(c), dy = g.random(rows * c)
        var y = [Float](repeating: 0, count: rows * c), mean = [Float](repeating: 0, count: c), inv = mean
        var rm = mean, rv = mean
        BatchNorm.forwardTrain(rows: rows, channels: c, x: x, gamma: gamma, beta: beta, y: &y, mean: &mean, invStd: &inv,
                               runningMean: &rm, runningVar: &rv, relu: true)
        func reference(_ v: [[Double]]) -> [Double] {
            Self.referenceBatchNorm(rows: rows, c: c, v[0], v[1], v[2]).map { max(0, $0) }
        }
        expectClose(y, reference([x, gamma, beta].map { $0.map(Double.init) }), "batch norm + relu forward")
        var dx = [Float](repeating: 0, count: rows * c), dg = [Float](repeating: 0, count: c), db = dg
        BatchNorm.backward(rows: rows, channels: c, x: x, dy: dy, gamma: gamma, mean: mean, invStd: inv, dx: &dx, dGamma: &dg, dBeta: &db,
                           reluOutput: y)
        g.check(inputs: [x, gamma, beta], dy: dy, analytic: [dx, dg, db], step: 1e-4, "batch norm + relu") { reference($0) }
        // Written over dy (as layers do with a dead gradient): the same values.
        var inPlace = dy, dg2 = [Float](repeating: 0, count: c), db2 = dg2
        inPlace.withUnsafeMutableBufferPointer { p in
            BatchNorm.backward(rows: rows, channels: c, x: x, dy: p.baseAddress!, gamma: gamma, mean: mean, invStd: inv, dx: p.baseAddress!,
                               dGamma: &dg2, dBeta: &db2, reluOutput: y)
        }
        #expect(inPlace == dx && dg2 == dg && db2 == db)
    }

    @Test func batchNormAddsTheResidualBeforeTheReLU() {
        var g = GradCheck()
        let (rows, c) = (40, 16)
        let x = g.random(rows * c, scale: 2), gamma = g.random(c).map { $0 + 1.5 }, beta = g.random(c), residual = g.random(rows * c)
        var y = [Float](repeating: 0, count: rows * c), plain = y, mean = [Float](repeating: 0, count: c), inv = mean
        var rm = mean, rv = mean
        BatchNorm.forwardTrain(rows: rows, channels: c, x: x, gamma: gamma, beta: beta, y: &plain, mean: &mean, invStd: &inv,
                               runningMean: &rm, runningVar: &rv)
        BatchNorm.forwardTrain(rows: rows, channels: c, x: x, gamma: gamma, beta: beta, y: &y, mean: &mean, invStd: &inv,
                               runningMean: &rm, runningVar: &rv, residual: residual, relu: true)
        #expect(y == zip(plain, residual).map { max(0, $0 + $1) })
    }

    @Test func batchNormEvalUsesRunningAverages() {
        let x: [Float] = [1, 2, 3, 4], gamma: [Float] = [2, 1], beta: [Float] = [0.5, -1]
        let rm: [Float] = [1, 2], rv: [Float] = [4, 0.25]
        var y = [Float](repeating: 0, count: 4)
        BatchNorm.forwardEval(rows: 2, channels: 2, x: x, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv, y: &y, epsilon: 0)
        #expect(y == [0.5, -1, 2.5, 3])  // (1−1)/2·2+0.5, (2−2)/0.5−1, (3−1)/2·2+0.5, (4−2)/0.5−1
    }

    // MARK: activations, pooling

    @Test func reluGradient() {
        var g = GradCheck()
        // Keep inputs away from the kink at 0, where differences are meaningless.
        let x = g.random(57).map { $0 < 0 ? $0 - 0.05 : $0 + 0.05 }, dy = g.random(57)
        var y = [Float](repeating: 0, count: 57), dx = y
        ReLU.forward(57, x: x, y: &y)
        ReLU.backward(57, y: y, dy: dy, dx: &dx)
        g.check(inputs: [x], dy: dy, analytic: [dx], "relu") { $0[0].map { max($0, 0) } }
    }

    @Test func sigmoidGradient() {
        var g = GradCheck()
        let x = g.random(57, scale: 4), dy = g.random(57)
        var y = [Float](repeating: 0, count: 57), dx = y
        Sigmoid.forward(57, x: x, y: &y)
        Sigmoid.backward(57, y: y, dy: dy, dx: &dx)
        expectClose(y, x.map { 1 / (1 + exp(-Double($0))) }, tolerance: 1e-6, "sigmoid forward")
        g.check(inputs: [x], dy: dy, analytic: [dx], "sigmoid") { $0[0].map { 1 / (1 + exp(-$0)) } }
    }

    /// a ⊙ b and the channel join of two maps, against plain loops; their gradients are
    /// the products with the other factor and the split, which the join inverts exactly.
    @Test func multiplyAndChannelJoin() {
        var g = GradCheck()
        let a = g.random(6 * 3), b = g.random(6 * 2), w = g.random(6 * 3)
        var out = [Float](repeating: 0, count: 18)
        Elementwise.multiply(18, a, w, into: &out)
        #expect(out == zip(a, w).map { $0 * $1 })
        var joined = [Float](repeating: 0, count: 30)
        Elementwise.concatChannels(rows: 6, a, 3, b, 2, into: &joined)
        var want: [Float] = []
        for r in 0..<6 { want += a[(r * 3)..<(r * 3 + 3)]; want += b[(r * 2)..<(r * 2 + 2)] }
        #expect(joined == want)
        var a2 = [Float](repeating: 0, count: 18), b2 = [Float](repeating: 0, count: 12)
        Elementwise.splitChannels(rows: 6, joined, 3, 2, a: &a2, b: &b2)
        #expect(a2 == a && b2 == b)
    }

    static func referencePool(_ s: Pooling.Shape, _ x: [Double], max useMax: Bool) -> [Double] {
        var y = [Double](repeating: 0, count: s.outputCount)
        for n in 0..<s.batch { for oy in 0..<s.outHeight { for ox in 0..<s.outWidth { for j in 0..<s.channels {
            var values: [Double] = []
            for ky in 0..<s.kernel { for kx in 0..<s.kernel {
                let iy = oy * s.stride - s.padding + ky, ix = ox * s.stride - s.padding + kx
                if iy >= 0, iy < s.height, ix >= 0, ix < s.width { values.append(x[((n * s.height + iy) * s.width + ix) * s.channels + j]) }
            } }
            y[((n * s.outHeight + oy) * s.outWidth + ox) * s.channels + j] = useMax ? values.max()! : values.reduce(0, +) / Double(values.count)
        } } } }
        return y
    }

    @Test(arguments: [Pooling.Shape(batch: 2, height: 7, width: 6, channels: 3, kernel: 2, stride: 2),
                      Pooling.Shape(batch: 1, height: 9, width: 9, channels: 5, kernel: 3, stride: 2, padding: 1)])
    func maxAndAveragePooling(_ s: Pooling.Shape) {
        var g = GradCheck()
        // Distinct values, so the maximum of each window is unique.
        var x = (0..<s.inputCount).map { Float($0) * 0.01 }
        g.rng.shuffle(&x)
        let dy = g.random(s.outputCount)
        var y = [Float](repeating: 0, count: s.outputCount), arg = [Int32](repeating: 0, count: s.outputCount)
        var dx = [Float](repeating: 0, count: s.inputCount)
        Pooling.maxForward(s, x: x, y: &y, argmax: &arg)
        expectClose(y, Self.referencePool(s, x.map(Double.init), max: true), "max pool")
        Pooling.maxBackward(s, dy: dy, argmax: arg, dx: &dx)
        g.check(inputs: [x], dy: dy, analytic: [dx], step: 1e-4, "max pool") { Self.referencePool(s, $0[0], max: true) }
        Pooling.averageForward(s, x: x, y: &y)
        expectClose(y, Self.referencePool(s, x.map(Double.init), max: false), "average pool")
        Pooling.averageBackward(s, dy: dy, dx: &dx)
        g.check(inputs: [x], dy: dy, analytic: [dx], "average pool") { Self.referencePool(s, $0[0], max: false) }
    }

    @Test func globalAveragePooling() {
        var g = GradCheck()
        let (n, p, c) = (3, 7, 5)
        let x = g.random(n * p * c), dy = g.random(n * c)
        func reference(_ x: [Double]) -> [Double] {
            (0..<(n * c)).map { i in (0..<p).reduce(0.0) { $0 + x[(i / c * p + $1) * c + i % c] } / Double(p) }
        }
        var y = [Float](repeating: 0, count: n * c), dx = [Float](repeating: 0, count: n * p * c)
        Pooling.globalAverageForward(batch: n, pixels: p, channels: c, x: x, y: &y)
        expectClose(y, reference(x.map(Double.init)), "global average pool")
        Pooling.globalAverageBackward(batch: n, pixels: p, channels: c, dy: dy, dx: &dx)
        g.check(inputs: [x], dy: dy, analytic: [dx], "global average pool") { reference($0[0]) }
    }

    // MARK: linear, softmax, cross-entropy

    @Test(arguments: [(1, 7, 3), (33, 65, 10)])
    func linearLayer(rows: Int, inputs: Int, outputs: Int) {
        var g = GradCheck()
        let x = g.random(rows * inputs), w = g.random(inputs * outputs), b = g.random(outputs), dy = g.random(rows * outputs)
        func reference(_ v: [[Double]]) -> [Double] {
            (0..<(rows * outputs)).map { i in
                (0..<inputs).reduce(v[2][i % outputs]) { $0 + v[0][i / outputs * inputs + $1] * v[1][$1 * outputs + i % outputs] }
            }
        }
        var y = [Float](repeating: 0, count: rows * outputs)
        Linear.forward(rows: rows, inputs: inputs, outputs: outputs, x: x, w: w, b: b, y: &y)
        expectClose(y, reference([x, w, b].map { $0.map(Double.init) }), "linear forward")
        var dx = [Float](repeating: 0, count: rows * inputs), dw = [Float](repeating: 0, count: inputs * outputs), db = [Float](repeating: 0, count: outputs)
        Linear.backward(rows: rows, inputs: inputs, outputs: outputs, x: x, w: w, dy: dy, dx: &dx, dw: &dw, db: &db)
        g.check(inputs: [x, w, b], dy: dy, analytic: [dx, dw, db], "linear") { reference($0) }
    }

    @Test func softmaxGradient() {
        var g = GradCheck()
        let (rows, c) = (4, 7)
        let x = g.random(rows * c, scale: 3), dy = g.random(rows * c)
        func reference(_ x: [Double]) -> [Double] {
            (0..<rows).flatMap { r -> [Double] in
                let row = Array(x[(r * c)..<((r + 1) * c)]), m = row.max()!
                let e = row.map { Foundation.exp($0 - m) }, s = e.reduce(0, +)
                return e.map { $0 / s }
            }
        }
        var y = [Float](repeating: 0, count: rows * c), dx = y
        Softmax.forward(rows: rows, classes: c, x: x, y: &y)
        expectClose(y, reference(x.map(Double.init)), "softmax")
        Softmax.backward(rows: rows, classes: c, y: y, dy: dy, dx: &dx)
        g.check(inputs: [x], dy: dy, analytic: [dx], "softmax") { reference($0[0]) }
    }

    @Test func crossEntropyOverASubsetOfRows() {
        var g = GradCheck()
        let (rows, c) = (9, 5)
        let logits = g.random(rows * c, scale: 4)
        let labels: [Int32] = (0..<rows).map { Int32($0 % c) }
        let select = [0, 2, 3, 7]
        func reference(_ x: [Double]) -> Double {
            select.map { r -> Double in
                let row = Array(x[(r * c)..<((r + 1) * c)]), m = row.max()!
                return m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)) - row[Int(labels[r])]
            }.reduce(0, +) / Double(select.count) * 0.7
        }
        var d = [Float](repeating: .nan, count: rows * c)
        let loss = CrossEntropy.loss(rows: rows, classes: c, logits: logits, labels: labels, select: select, weight: 0.7, dLogits: &d)
        #expect(abs(loss - reference(logits.map(Double.init))) < 1e-5)
        #expect((0..<rows).filter { !select.contains($0) }.allSatisfy { r in (0..<c).allSatisfy { d[r * c + $0] == 0 } })
        // The loss is a scalar: check with dy = [1].
        g.check(inputs: [logits], dy: [1], analytic: [d], "cross-entropy") { [reference($0[0])] }
        #expect(CrossEntropy.argmax(rows: 2, classes: 3, logits: [0, 5, 1, 9, 2, 3]) == [1, 0])
    }

    // MARK: low-rank adapter, batch moves

    @Test func lowRankMergeAndGradients() {
        var g = GradCheck()
        let (k, n, r) = (27, 19, 4)
        let scale: Float = 16 / 4
        let w = g.random(k * n), a = g.random(k * r), b = g.random(r * n), dy = g.random(k * n)
        func reference(_ v: [[Double]]) -> [Double] {
            (0..<(k * n)).map { (i: Int) -> Double in
                var s = 0.0
                for q in 0..<r { s += v[1][i / n * r + q] * v[2][q * n + i % n] }
                return v[0][i] + Double(scale) * s
            }
        }
        var merged = [Float](repeating: 0, count: k * n)
        LowRank.merge(k: k, n: n, rank: r, scale: scale, w: w, a: a, b: b, into: &merged)
        expectClose(merged, reference([w, a, b].map { $0.map(Double.init) }), "low-rank merge")
        var da = [Float](repeating: 0, count: k * r), db = [Float](repeating: 0, count: r * n)
        let dw0 = g.random(k * n)
        var dw = dw0
        LowRank.backward(k: k, n: n, rank: r, scale: scale, a: a, b: b, dMerged: dy, dA: &da, dB: &db, dW: &dw)
        g.check(inputs: [w, a, b], dy: dy, analytic: [zip(dw, dw0).map { $0 - $1 }, da, db], "low-rank") { reference($0) }
    }

    /// At a ResNet-18 layer's size the passes split rows between threads: against plain
    /// loops, and the same bits at a fixed thread count.
    @Test func lowRankPassesOnALargeWeight() {
        var g = GradCheck()
        let (k, n, r) = (1153, 131, 8)
        let scale: Float = 2
        let w = g.random(k * n), a = g.random(k * r), b = g.random(r * n), dm = g.random(k * n)
        var merged = [Float](repeating: 0, count: k * n)
        LowRank.merge(k: k, n: n, rank: r, scale: scale, w: w, a: a, b: b, into: &merged, engine: Engine(threads: 2))
        var wantMerged = [Double](repeating: 0, count: k * n), wantA = [Double](repeating: 0, count: k * r)
        var wantB = [Double](repeating: 0, count: r * n)
        for p in 0..<k { for c in 0..<n {
            var s = 0.0
            for j in 0..<r {
                s += Double(a[p * r + j]) * Double(b[j * n + c])
                wantA[p * r + j] += Double(scale) * Double(dm[p * n + c]) * Double(b[j * n + c])
                wantB[j * n + c] += Double(scale) * Double(a[p * r + j]) * Double(dm[p * n + c])
            }
            wantMerged[p * n + c] = Double(w[p * n + c]) + Double(scale) * s
        } }
        expectClose(merged, wantMerged, "merge")
        func grads() -> ([Float], [Float]) {
            var da = [Float](repeating: 0, count: k * r), db = [Float](repeating: 0, count: r * n)
            LowRank.backward(k: k, n: n, rank: r, scale: scale, a: a, b: b, dMerged: dm, dA: &da, dB: &db, engine: Engine(threads: 2))
            return (da, db)
        }
        let (da, db) = grads()
        expectClose(da, wantA, "dA")
        expectClose(db, wantB, "dB")
        let again = grads()
        #expect(again.0 == da && again.1 == db)
    }

    @Test func gatherAndScatterRowsRoundTrip() {
        let src: [Float] = (0..<12).map(Float.init)  // 4 rows of 3
        var picked = [Float](repeating: 0, count: 6)
        Elementwise.gatherRows(src, length: 3, indices: [3, 1], into: &picked)
        #expect(picked == [9, 10, 11, 3, 4, 5])
        var back = [Float](repeating: 0, count: 12)
        Elementwise.scatterRows(picked, length: 3, indices: [3, 1], into: &back)
        #expect(back == [0, 0, 0, 3, 4, 5, 0, 0, 0, 9, 10, 11])
        Elementwise.scatterAddRows(picked, length: 3, indices: [3, 1], into: &back)
        #expect(back == [0, 0, 0, 6, 8, 10, 0, 0, 0, 18, 20, 22])
        var y: [Float] = [1, 2, 3]
        Elementwise.axpy(3, alpha: 2, [1, 1, 1], &y)
        Elementwise.scale(3, 0.5, &y)
        Elementwise.add(3, y, [1, 1, 1], into: &y)
        #expect(y == [2.5, 3, 3.5])
    }
}
