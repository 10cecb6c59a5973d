import MoLAModel
import MoLASupport
import MoLATensor
import Testing

/// The whole network's backward, layer wiring included, against finite differences of its
/// own forward: for each parameter tensor a random direction v, (L(θ+hv) − L(θ−hv))/2h
/// must equal ∇L·v. (Each kernel is checked exactly in Float64 in MoLATensorTests; this
/// catches mistakes in how layers are put together.)
@Suite struct ModelGradientTests {
    enum Kind: String, CaseIterable {
        case plain, grad, gradFactorised, router, mmoe, plainTaskNorm, gradTaskNorm, gradConvLora, routerConvLora, imagenetStem, bottleneck, shuffle, shuffleGrad,
             routerSharedA, cgc, dselect, crossStitch, mtan, ple, ltb
        /// The ImageNet stem (stride 2, then stride-2 pooling) gets a larger image: at 6×5 the
        /// last stage would see 1×1 per image, batch norm over 5 values and pooling over a
        /// handful, and central differences at h = 1e-4 are then off by curvature (they
        /// moved towards the analytic value as h shrank); at 16×14 still by up to 18%.
        /// The bottleneck net (inner widths 2 and 3) likewise gets 12×10, ShuffleNet (stride-2
        /// stem and pooling, like the ImageNet stem) 32×30: at 24×22 its stem was off by 9%.
        var input: FeatureShape {
            switch self {
            case .imagenetStem: FeatureShape(height: 24, width: 22, channels: 2)
            case .bottleneck: FeatureShape(height: 12, width: 10, channels: 2)
            case .shuffle, .shuffleGrad: FeatureShape(height: 32, width: 30, channels: 2)
            default: FeatureShape(height: 6, width: 5, channels: 2)
            }
        }
    }

    func tinyModel(_ kind: Kind) -> TaskModel {
        let store = ParameterStore()
        let config = BackboneConfig(stemWidth: 4, widths: [4, 6], blocks: [1, 1])
        let input = kind.input
        let model: TaskModel
        switch kind {
        case .imagenetStem:
            let stem = BackboneConfig(stemWidth: 4, widths: [4, 6], blocks: [1, 1], imagenetStem: true)
            model = Classifier(store: store, backbone: ResNet(store, config: stem, input: input), classes: [3, 4])
        case .shuffle, .shuffleGrad:
            let ad = AdapterConfig(count: 2, ranks: [2, 2], alpha: 4, stages: [0, 1], stem: true)
            let net = ShuffleNetV2(store, config: .init(stem: 4, widths: [4, 8], repeats: [2, 2], last: 8), input: input,
                                   adapters: kind == .shuffleGrad ? ad : nil)
            model = Classifier(store: store, backbone: net, classes: [3, 4])
        case .bottleneck:
            let ad = AdapterConfig(count: 2, ranks: [2, 2], alpha: 4, stages: [0, 1], stem: true)
            let config = BackboneConfig(stemWidth: 4, widths: [2, 3], blocks: [2, 1], bottleneck: true)
            model = Classifier(store: store, backbone: ResNet(store, config: config, input: input, adapters: ad), classes: [3, 4])
        case .plain, .plainTaskNorm:
            model = Classifier(store: store, backbone: ResNet(store, config: config, input: input, taskNorms: kind == .plain ? nil : 2), classes: [3, 4])
        case .grad, .gradFactorised, .gradTaskNorm, .gradConvLora:
            let ad = AdapterConfig(count: 2, ranks: [2, 2], alpha: 4, stages: [0, 1], stem: true, shortcuts: true,
                                   form: kind == .gradConvLora ? .convLora : .factorised)
            let backbone = ResNet(store, config: config, input: input, adapters: ad, taskNorms: kind == .gradTaskNorm ? 2 : nil)
            // MoLA-Grad runs each layer merged (here, at this size) or factorised: test both.
            for c in backbone.convolutions { (c.conv.adapters as? FactorisedAdapters)?.factorisedThreshold = kind == .grad ? 0 : 1000 }
            model = Classifier(store: store, backbone: backbone, classes: [3, 4])
        case .router, .routerConvLora, .routerSharedA:
            let ad = AdapterConfig(count: 3, ranks: [2, 2], alpha: 4, stages: [0, 1], stem: false, shortcuts: true,
                                   form: kind == .routerConvLora ? .convLora : kind == .routerSharedA ? .sharedA : .factorised)
            model = RouterClassifier(store: store, backbone: ResNet(store, config: config, input: input, adapters: ad),
                                     router: ResNet(store, name: "router", config: BackboneConfig(stemWidth: 3, widths: [4], blocks: [1]), input: input),
                                     classes: [3, 4], adapters: 3, decorrelationWeight: 0.5, projection: 5)
        case .mmoe:
            model = MMoEClassifier(store: store, config: config, input: input, classes: [3, 4], experts: 2)
        case .cgc:
            model = MMoEClassifier(store: store, config: config, input: input, classes: [3, 4], experts: 1, taskExperts: 2)
        case .dselect:
            // Wiring only (two experts: at four, the experts' small gradients sat at the Float32
            // noise floor of this check); the gate itself is checked at 4 experts in
            // `dselectGateMatchesFiniteDifferences`. γ wide enough that the selectors sit
            // inside the smooth step at this init.
            model = MMoEClassifier(store: store, config: config, input: input, classes: [3, 4], experts: 2, gate: .dselect(k: 2, gamma: 8))
        case .crossStitch:
            model = CrossStitchClassifier(store: store, config: config, input: input, classes: [3, 4])
        case .mtan:
            model = MTANClassifier(store: store, backbone: ResNet(store, config: config, input: input), classes: [3, 4])
        case .ple:
            model = PLEClassifier(store: store, config: config, input: input, classes: [3, 4], experts: 2, taskExperts: 1)
        case .ltb:
            model = CrossStitchClassifier(store: store, config: config, input: input, classes: [3, 4], mixing: .branching)
            // Past the warm-up: each column's input is the parent drawn for this step.
            model.beginStep(Self.pastWarmUp)
        }
        store.allocate(seed: 7)
        // B starts at zero (so the model starts as the plain backbone); give it values so
        // the adapters' gradients are not trivially zero.
        var g = RandomGenerator(seed: 8)
        for e in store.entries where e.name.hasSuffix(".b") { for i in 0..<e.count { store.values[e.offset + i] = g.uniform(-0.3, 0.3) } }
        return model
    }

    @Test(arguments: Kind.allCases)
    func directionalDerivativesMatch(_ kind: Kind) {
        let net = tinyModel(kind)
        let store = net.store
        var g = RandomGenerator(seed: 9)
        let n = 5
        let s = kind.input
        let x = Tensor(shape: [n, s.height, s.width, s.channels], scalars: (0..<(n * s.count)).map { _ in g.uniform(-1, 1) })
        let layout = BatchLayout(tasks: [0, 0, 0, 1, 1], training: true)
        let labels: [Int32] = [0, 2, 1, 3, 0]
        func loss() -> Double {
            _ = net.forward(x, layout: layout)
            return net.lossAndBackward(labels: labels, layout: layout).total
        }
        store.zeroGradients()
        _ = loss()
        let grads = Array(UnsafeBufferPointer(start: store.gradients, count: store.count))
        var checked = 0
        // LTB's branch logits get the straight-through gradient, not the derivative of the
        // hard draw (which is 0): checked in `ltbBranchLogitsLearnThroughTheSoftDraw`.
        for e in store.entries where e.trainable && !e.name.hasPrefix("gates.branch") {
            let v = (0..<e.count).map { _ in g.uniform(-1, 1) }
            let analytic = (0..<e.count).reduce(0.0) { $0 + Double(grads[e.offset + $1]) * Double(v[$1]) }
            // Small enough that ReLU kinks and batch-norm curvature do not bias the
            // difference (at 1e-2 errors reached 10%, shrinking steadily with h).
            let h: Float = 1e-4
            let keep = (0..<e.count).map { store.values[e.offset + $0] }
            for i in 0..<e.count { store.values[e.offset + i] = keep[i] + h * v[i] }
            let up = loss()
            for i in 0..<e.count { store.values[e.offset + i] = keep[i] - h * v[i] }
            let down = loss()
            for i in 0..<e.count { store.values[e.offset + i] = keep[i] }
            let numeric = (up - down) / (2 * Double(h))
            // Float32 activations put ~2.5e-3 of noise on `numeric` at this h, so gradients
            // smaller than ~0.05 are compared absolutely (the kernels are checked exactly in
            // Float64 elsewhere; this check is for wiring).
            let err = abs(numeric - analytic) / max(0.05, abs(numeric), abs(analytic))
            #expect(err < 3e-2, "\(kind) \(e.name): analytic \(analytic), numeric \(numeric)")
            checked += 1
        }
        #expect(checked > 15)
    }

    static let pastWarmUp = TrainingProgress(step: 3, epoch: 2, epochs: 10, seed: 1)

    /// LTB's logits: no gradient in the warm-up (every column sums all), the straight-through
    /// gradient after it ((1/τ)·y ⊙ (dα − ⟨dα, y⟩) per row, y the soft draw: each row sums
    /// to 0), the same draw for the same step; evaluation takes each column's likeliest
    /// parent whatever the step.
    @Test func ltbBranchLogitsLearnThroughTheSoftDraw() {
        let net = tinyModel(.ltb) as! CrossStitchClassifier
        let store = net.store
        var g = RandomGenerator(seed: 9)
        let s = Kind.ltb.input
        let x = Tensor(shape: [5, s.height, s.width, s.channels], scalars: (0..<(5 * s.count)).map { _ in g.uniform(-1, 1) })
        let labels: [Int32] = [0, 2, 1, 3, 0]
        let branch = store.entries.filter { $0.name.hasPrefix("gates.branch") }
        #expect(branch.count == 2)
        func branchGradient(_ progress: TrainingProgress) -> [Float] {
            net.beginStep(progress)
            store.zeroGradients()
            let layout = BatchLayout(tasks: [0, 0, 0, 1, 1], training: true)
            _ = net.forward(x, layout: layout)
            _ = net.lossAndBackward(labels: labels, layout: layout)
            return branch.flatMap { e in (0..<e.count).map { store.gradients[e.offset + $0] } }
        }
        #expect(branchGradient(TrainingProgress(step: 0, epoch: 0, epochs: 10, seed: 1)).allSatisfy { $0 == 0 }, "warm-up: no gradient")
        let after = branchGradient(Self.pastWarmUp)
        #expect(after.contains { $0 != 0 } && after == branchGradient(Self.pastWarmUp), "past the warm-up: a gradient, the same draw again")
        // Each row of the logits' gradient sums to 0 (softmax's Jacobian annihilates 1).
        for r in 0..<(after.count / 2) { #expect(abs(after[2 * r] + after[2 * r + 1]) < 1e-6) }
        let eval = BatchLayout(tasks: [0, 0, 0, 1, 1], training: false)
        let first = net.forward(x, layout: eval).map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
        net.beginStep(TrainingProgress(step: 9, epoch: 5, epochs: 10, seed: 4))
        #expect(first == net.forward(x, layout: eval).map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) })
        #expect(net.stitchWeights.allSatisfy { u in abs(u[0] + u[1] - 1) < 1e-6 && abs(u[2] + u[3] - 1) < 1e-6 })
    }

    /// The DSelect-k gate alone (8 experts: 3 bits, k = 3 selectors) against central
    /// differences of L = Σ v·w, and its defining properties: each row of weights sums to 1,
    /// and with the selectors' bits saturated it is k-sparse.
    @Test func dselectGateMatchesFiniteDifferences() {
        let store = ParameterStore()
        let gate = DSelectGate(store, name: "gate", inputs: 5, experts: 8, k: 3, gamma: 6)
        store.allocate(seed: 4)
        var g = RandomGenerator(seed: 5)
        let x = Tensor(shape: [4, 5], scalars: (0..<20).map { _ in g.uniform(-1, 1) })
        let v = (0..<32).map { _ in g.uniform(-1, 1) }
        func loss() -> Double { zip(gate.forward(x), v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
        let w = gate.forward(x)
        for row in 0..<4 { #expect(abs(w[(row * 8)..<(row * 8 + 8)].reduce(0, +) - 1) < 1e-5) }
        store.zeroGradients()
        gate.backward(v)
        var checked = 0
        for e in store.entries {
            for i in 0..<e.count {
                let keep = store.values[e.offset + i], h: Float = 1e-2
                store.values[e.offset + i] = keep + h; let up = loss()
                store.values[e.offset + i] = keep - h; let down = loss()
                store.values[e.offset + i] = keep
                let numeric = (up - down) / (2 * Double(h)), analytic = Double(store.gradients[e.offset + i])
                #expect(abs(numeric - analytic) < 2e-3 * max(1, abs(numeric)), "\(e.name)[\(i)]: \(analytic) vs \(numeric)")
                checked += 1
            }
        }
        #expect(checked == 5 * 12 + 12)
        // Saturate every bit (z far outside ±γ/2): each selector is one-hot, so ≤ k experts.
        let b = store.entries.first { $0.name == "gate.bias" }!
        for i in 0..<9 { store.values[b.offset + i] = i % 2 == 0 ? 50 : -50 }
        let sparse = gate.forward(x)
        #expect(DSelectGate.activeExperts(sparse, experts: 8).allSatisfy { $0 >= 1 && $0 <= 3 })
    }

    /// Batch norm per task: a task group's outputs do not depend on the other tasks'
    /// images, in training (own batch statistics) and in evaluation (own running averages);
    /// with shared batch norm they do.
    @Test func perTaskBatchNormIsolatesTasks() {
        for kind in [Kind.gradTaskNorm, .grad] {
            let net = tinyModel(kind)
            var g = RandomGenerator(seed: 11)
            let a = (0..<(3 * 60)).map { _ in g.uniform(-1, 1) }
            let b1 = (0..<(2 * 60)).map { _ in g.uniform(-1, 1) }, b2 = (0..<(2 * 60)).map { _ in g.uniform(-2, 3) }
            for training in [true, false] {
                let layout = BatchLayout(tasks: [0, 0, 0, 1, 1], training: training)
                let first = net.forward(Tensor(shape: [5, 6, 5, 2], scalars: a + b1), layout: layout)[0]
                let y1 = Array(UnsafeBufferPointer(start: first.pointer, count: first.count))
                let second = net.forward(Tensor(shape: [5, 6, 5, 2], scalars: a + b2), layout: layout)[0]
                let y2 = Array(UnsafeBufferPointer(start: second.pointer, count: second.count))
                if training || kind == .gradTaskNorm {
                    #expect((y1 == y2) == (kind == .gradTaskNorm), "\(kind), training \(training)")
                }
            }
        }
    }

    /// Loss weights per task (proportional weighting, data-parallel shares): the loss is
    /// Σ_t w_t·mean CE_t, and with w_t = n_t/B it is the mean over all images.
    @Test func weightedLossIsTheWeightedSumOfGroupMeans() {
        let net = tinyModel(.plain)
        var g = RandomGenerator(seed: 12)
        let x = Tensor(shape: [5, 6, 5, 2], scalars: (0..<300).map { _ in g.uniform(-1, 1) })
        let labels: [Int32] = [0, 2, 1, 3, 0]
        var layout = BatchLayout(tasks: [0, 0, 0, 1, 1], training: true)
        let logits = net.forward(x, layout: layout)
        let means = layout.groups.enumerated().map { i, grp in
            CrossEntropy.loss(rows: grp.range.count, classes: logits[i].shape[1], logits: logits[i].pointer, labels: Array(labels[grp.range]))
        }
        layout.lossWeights = [3.0 / 5, 2.0 / 5]
        _ = net.forward(x, layout: layout)
        let weighted = net.lossAndBackward(labels: labels, layout: layout).total
        #expect(abs(weighted - (3 * means[0] + 2 * means[1]) / 5) < 1e-9, "\(weighted) vs \(means)")
    }

    /// Merged (W + ΔW_t per group) and factorised (W, plus the rank-r path per group) are
    /// the same maths: same outputs and gradients to float32 rounding.
    @Test func mergedAndFactorisedAgree() {
        let (merged, factorised) = (tinyModel(.grad), tinyModel(.gradFactorised))
        var g = RandomGenerator(seed: 11)
        let x = Tensor(shape: [5, 6, 5, 2], scalars: (0..<300).map { _ in g.uniform(-1, 1) })
        let layout = BatchLayout(tasks: [0, 0, 0, 1, 1], training: true)
        let labels: [Int32] = [0, 2, 1, 3, 0]
        var results: [(Double, [Float])] = []
        for net in [merged, factorised] {
            net.store.zeroGradients()
            _ = net.forward(x, layout: layout)
            let loss = net.lossAndBackward(labels: labels, layout: layout).total
            results.append((loss, Array(UnsafeBufferPointer(start: net.store.gradients, count: net.store.count))))
        }
        #expect(abs(results[0].0 - results[1].0) < 1e-5)
        let worst = zip(results[0].1, results[1].1).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
        #expect(worst < 1e-4, "worst gradient difference \(worst)")
    }

    @Test func adaptersStartAsThePlainBackboneAndStayPerTask() {
        // B = 0 at init: every task sees W itself, so outputs equal a model without adapters.
        let store = ParameterStore()
        let net = Classifier(store: store, backbone: ResNet(store, config: BackboneConfig(stemWidth: 4, widths: [4], blocks: [1]),
                                                           input: FeatureShape(height: 5, width: 5, channels: 1),
                                                           adapters: AdapterConfig(count: 2, ranks: [2], stages: [0])), classes: [3, 3])
        store.allocate(seed: 1)
        let x = Tensor(shape: [2, 5, 5, 1], scalars: (0..<50).map { Float($0 % 7) / 7 })
        let eval = BatchLayout(tasks: [0, 1], training: false)
        let before = net.forward(x, layout: eval).map(\.scalars)
        // Only task 1's adapter changes: task 0's output must not move.
        let b1 = store.entries.first { $0.name == "stage1.block1.conv1.adapter.1.b" }!
        for i in 0..<b1.count { store.values[b1.offset + i] = 0.5 }
        let after = net.forward(x, layout: eval).map(\.scalars)
        #expect(after[0] == before[0])
        #expect(after[1] != before[1])
    }

    @Test func batchLayoutGroupsTasks() {
        let tasks: [Int32] = [2, 0, 2, 1, 0]
        let order = BatchLayout.groupingOrder(tasks)
        #expect(order == [1, 4, 3, 0, 2])
        let layout = BatchLayout(tasks: order.map { tasks[$0] }, training: true)
        #expect(layout.groups.map(\.task) == [0, 1, 2] && layout.groups.map(\.range) == [0..<2, 2..<3, 3..<5])
    }
}
