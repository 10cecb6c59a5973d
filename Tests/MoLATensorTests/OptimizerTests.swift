import Foundation
import Testing
import MoLATensor

@Suite struct OptimizerTests {
    func store(_ values: [Float], decay: Bool = true) -> (ParameterStore, ParameterRef) {
        let s = ParameterStore()
        let p = s.add("w", shape: [values.count], .zeros, decay: decay)
        s.allocate(seed: 0)
        s.value(p).update(from: values, count: values.count)
        return (s, p)
    }

    @Test func sgdMomentumWithCoupledWeightDecayMatchesTorchsUpdate() {
        let (s, p) = store([1, -2])
        var opt = SGD(momentum: 0.9, weightDecay: 0.1)
        var theta: [Double] = [1, -2], v: [Double] = [0, 0]
        for step in 0..<3 {
            let grad: [Double] = [0.5 * Double(step + 1), -0.25]
            s.gradient(p).update(from: grad.map(Float.init), count: 2)
            opt.step(s, learningRate: 0.05)
            for i in 0..<2 {
                let g = grad[i] + 0.1 * theta[i]
                v[i] = 0.9 * v[i] + g
                theta[i] -= 0.05 * v[i]
            }
        }
        #expect(abs(Double(s.value(p)[0]) - theta[0]) < 1e-6 && abs(Double(s.value(p)[1]) - theta[1]) < 1e-6)
    }

    @Test func adamWDecouplesDecayAndCorrectsBias() {
        let (s, p) = store([0.5])
        var opt = AdamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        var theta = 0.5, m = 0.0, v = 0.0
        for t in 1...4 {
            let g = 0.3 - 0.1 * Double(t)
            s.gradient(p)[0] = Float(g)
            opt.step(s, learningRate: 0.01)
            theta -= 0.01 * 0.01 * theta
            m = 0.9 * m + 0.1 * g; v = 0.999 * v + 0.001 * g * g
            theta -= 0.01 * (m / (1 - pow(0.9, Double(t)))) / ((v / (1 - pow(0.999, Double(t)))).squareRoot() + 1e-8)
        }
        #expect(abs(Double(s.value(p)[0]) - theta) < 1e-6)
    }

    @Test func buffersAndNonDecayingParametersAreLeftAlone() {
        let s = ParameterStore()
        let w = s.add("w", shape: [1], .ones)
        let bn = s.add("bn.bias", shape: [1], .ones, decay: false)
        let running = s.add("bn.running_mean", shape: [1], .ones, trainable: false)
        s.allocate(seed: 0)
        var opt = SGD(momentum: 0, weightDecay: 0.5)
        opt.step(s, learningRate: 1)  // zero gradients: only decay acts
        #expect(s.value(w)[0] == 0.5 && s.value(bn)[0] == 1 && s.value(running)[0] == 1)
    }

    @Test func optimizerStateRestoresExactly() throws {
        let (s1, p1) = store([1, 2, 3]), (s2, p2) = store([1, 2, 3])
        var a = AdamW(), b = AdamW()
        for i in 0..<3 { s1.gradient(p1)[i] = Float(i) - 1; s2.gradient(p2)[i] = Float(i) - 1 }
        a.step(s1, learningRate: 0.1); b.step(s2, learningRate: 0.1)
        var c = AdamW()
        try c.restore(a.state)
        c.step(s1, learningRate: 0.1); b.step(s2, learningRate: 0.1)
        #expect((0..<3).allSatisfy { s1.value(p1)[$0] == s2.value(p2)[$0] })
        #expect(throws: OptimizerStateError.self) { try c.restore([:]) }
    }

    @Test func schedules() {
        let cos = LearningRateSchedule.cosine(totalSteps: 101)
        #expect(cos.rate(base: 0.1, step: 0) == 0.1)
        #expect(abs(cos.rate(base: 0.1, step: 50) - 0.05) < 1e-6)
        #expect(abs(cos.rate(base: 0.1, step: 100)) < 1e-7)
        let warm = LearningRateSchedule.cosine(totalSteps: 20, warmupSteps: 4)
        #expect(warm.rate(base: 1, step: 0) == 0.25 && warm.rate(base: 1, step: 3) == 1 && warm.rate(base: 1, step: 4) == 1)
        let step = LearningRateSchedule.step(every: 10, gamma: 0.1)
        #expect(step.rate(base: 1, step: 9) == 1 && abs(step.rate(base: 1, step: 25) - 0.01) < 1e-7)
        #expect(LearningRateSchedule.constant.rate(base: 0.3, step: 1000) == 0.3)
    }

    @Test func initialisersHaveTheirDocumentedSpread() {
        let s = ParameterStore()
        let u = s.add("u", shape: [64, 100], .kaimingUniform(fanIn: 100, a: Float(5).squareRoot()))
        let n = s.add("n", shape: [200, 100], .kaimingNormal(fan: 50, gain: Float(2).squareRoot()))
        let z = s.add("z", shape: [10], .zeros)
        s.allocate(seed: 3)
        let uv = UnsafeBufferPointer(start: s.value(u), count: u.count)
        #expect(uv.allSatisfy { abs($0) <= 0.1 } && uv.contains { abs($0) > 0.09 })  // ±1/√100
        let nv = UnsafeBufferPointer(start: s.value(n), count: n.count).map(Double.init)
        let std = (nv.map { $0 * $0 }.reduce(0, +) / Double(nv.count)).squareRoot()
        #expect(abs(std - 0.2) < 0.005)  // √2/√50
        #expect(UnsafeBufferPointer(start: s.value(z), count: 10).allSatisfy { $0 == 0 })
        // Same seed, same values; a parameter's values do not depend on the others.
        let t = ParameterStore()
        let u2 = t.add("u", shape: [64, 100], .kaimingUniform(fanIn: 100, a: Float(5).squareRoot()))
        t.allocate(seed: 3)
        #expect((0..<u.count).allSatisfy { s.value(u)[$0] == t.value(u2)[$0] })
    }
}
