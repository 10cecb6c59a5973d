import Foundation
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor
import MoLATrain
import Testing

/// `rep_grad`: the combiners on the tasks' gradients of the shared representation.
@Suite struct RepresentationGradientTests {
    static let combiners = Balancer.all.filter { $0.needsTaskGradients && $0.notOnRepresentation == nil }

    /// Conflicting task rows: three tasks in 24 coordinates, a different draw each step.
    static func rows(step: Int) -> [[Float]] {
        var rng = RandomGenerator(seed: 11, stream: UInt64(step))
        var g = (0..<3).map { _ in (0..<24).map { _ in Float(rng.nextDouble() * 2 - 1) } }
        for k in 0..<24 { g[1][k] -= 0.8 * g[0][k] }  // task 1 against task 0
        return g
    }

    static func residual(_ w: [Double], _ g: [[Float]], _ d: [Float]) -> Double {
        let back = (0..<d.count).map { k in zip(w, g).reduce(0.0) { $0 + $1.0 * Double($1.1[k]) } }
        let diff = zip(back, d).reduce(0.0) { $0 + ($1.0 - Double($1.1)) * ($1.0 - Double($1.1)) }.squareRoot()
        return diff / max(1e-30, d.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
    }

    /// What `rep_grad` carries back is each combiner's direction as weights on the task
    /// rows: Σ_t w_t·g_t gives back the direction `combine` returns (within 1e-5 of its
    /// norm), over four steps so the stateful ones (GradVac, GradNorm) are seen moving.
    /// The three refused ones give directions no weighting of the rows expresses.
    @Test func combinationWeightsGiveBackTheDirection() {
        let setup = BalancerSetup(tasks: 3, learningRate: 0.05, stepsPerEpoch: 1)
        for balancer in Balancer.all where balancer.needsTaskGradients {
            guard case .combinesGradients(let make) = balancer.kind else { continue }
            let direct = make(setup), weighted = make(setup)
            var worst = 0.0
            for step in 0..<4 {
                let g = Self.rows(step: step)
                let rows = TaskRows(tasks: [0, 1, 2], losses: [1.5, 0.7 + Double(step) * 0.1, 2.1], step: step)
                var r1 = RandomGenerator(seed: 5, stream: UInt64(step)), r2 = r1
                let d = direct.combine(g, rows: rows, rng: &r1)
                let w = weighted.combinationWeights(g, rows: rows, rng: &r2)
                #expect(w.count == 3 && w.allSatisfy(\.isFinite), "\(balancer): \(w)")
                worst = max(worst, Self.residual(w, g, d))
            }
            if balancer.notOnRepresentation == nil {
                #expect(worst < 1e-5, "\(balancer): Σ w·g is \(worst) of |d| away from the direction")
            } else {
                #expect(worst > 1e-3, "\(balancer) is refused rep_grad, yet its direction is a weighting of the rows (\(worst))")
            }
        }
        #expect(Self.combiners.map(\.name) == ["pcgrad", "mgda", "cagrad", "aligned-mtl", "upgrad", "dualproj", "imtl-g", "config", "gradvac", "nash-mtl", "fairgrad", "gradnorm"])
    }

    /// The step's arithmetic against its definition on a MoLA-Grad model: the one backward
    /// through the heads gives each task's vector as the backward of that task's loss alone
    /// does (LibMTL's T backwards), and the backbone's gradient is that of Σ_t w_t·L_t with
    /// the weights MGDA draws from the vectors, the heads' that of Σ_t L_t.
    @Test func stepIsTheGradientOfTheWeightedLosses() throws {
        let tmp = TempDir()
        let config = try TrainConfig.load(TinyData.config(tmp, method: "mola-grad", extra: "weighting: {name: mgda, rep_grad: true}"))
        #expect(config.repGrad == true && config.variant?.contains("mgda (rep_grad)") == true)
        let model = try #require(ModelFactory.make(config, input: FeatureShape(height: 8, width: 8, channels: 1), classes: [10, 10, 10], adapterCount: 3)
            as? any SharedRepresentationModel)
        var rng = RandomGenerator(seed: 2)
        let tasks: [Int32] = [0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2]  // task 1 holds no image of the batch
        let images = Tensor(shape: [tasks.count, 8, 8, 1], scalars: (0..<(tasks.count * 64)).map { _ in Float(rng.nextDouble()) })
        let labels = tasks.indices.map { Int32($0 * 7 % 10) }
        let layout = BatchLayout(tasks: tasks, training: true)
        let store = model.store
        func gradients() -> [Float] { Array(UnsafeBufferPointer(start: store.gradients, count: store.count)) }

        // MGDA on the two tasks with rows (a zero row would take all its weight); task 1's
        // weight scales no row.
        let r = RepresentationGradients.compute(model, images: images, labels: labels, layout: layout, tasks: [0, 1, 2]) { v, _ in
            let w = MGDA().weights([v[0], v[2]])
            return [w[0], 0.3, w[1]]
        }
        let step = gradients()
        #expect(r.vectors.count == 3 && r.vectors[1].allSatisfy { $0 == 0 }, "task 1 has no rows: its vector is zeros")

        for (row, task) in [0, 1, 2].enumerated() {
            var one = layout
            one.lossWeights = (0..<3).map { $0 == task ? 1 : 0 }
            store.zeroGradients()
            _ = model.forward(images, layout: one)
            let (_, g) = model.lossAndRepresentationGradient(labels: labels, layout: one)
            let width = g.count / tasks.count
            let vector = (0..<width).map { k in (0..<tasks.count).reduce(Float(0)) { $0 + g.pointer[$1 * width + k] } }
            let scale = max(1e-12, vector.map(abs).max() ?? 0)
            #expect(zip(vector, r.vectors[row]).allSatisfy { abs($0 - $1) <= 1e-6 * scale }, "task \(task)'s vector")
        }

        func compare(_ lossWeights: [Double]?, roles: (ParameterRole) -> Bool, _ what: String) {
            var l = layout
            l.lossWeights = lossWeights
            store.zeroGradients()
            _ = model.forward(images, layout: l)
            _ = model.lossAndBackward(labels: labels, layout: l)
            let want = gradients()
            for (entry, range) in store.ranges(where: roles) {
                let scale = max(1e-12, range.map { abs(want[$0]) }.max()!)
                let worst = range.map { abs(want[$0] - step[$0]) }.max()!
                #expect(worst <= 1e-5 * scale, "\(what): \(entry.name) differs by \(worst) (scale \(scale))")
            }
        }
        #expect(abs(r.weights[0] + r.weights[2] - 1) < 1e-9 && abs(r.weights[0] - r.weights[2]) > 1e-3, "MGDA's weights \(r.weights)")
        compare(r.weights, roles: { $0 != .head }, "the backbone and adapters under Σ w_t·L_t")
        compare(nil, roles: { $0 == .head }, "the heads under Σ L_t")
    }

    /// The config form, and what it refuses with the reason and the fix.
    @Test func configFormAndRefusals() throws {
        let tmp = TempDir()
        func load(_ method: String, _ weighting: String) throws -> TrainConfig {
            try TrainConfig.load(TinyData.config(tmp, method: method, extra: "weighting: \(weighting)"))
        }
        func error(_ method: String, _ weighting: String) -> String {
            do { _ = try load(method, weighting); return "no error" } catch { return "\(error)" }
        }
        let plain = try load("uniform", "pcgrad"), off = try load("uniform", "{name: pcgrad, rep_grad: false}")
        let on = try load("uniform", "{name: pcgrad, rep_grad: true}")
        #expect(plain.repGrad == nil && off.hash == plain.hash && on.hash != plain.hash)
        #expect(on.weighting?.name == "pcgrad" && on.variant == "pcgrad (rep_grad)" && on.settings["weighting.rep_grad"] == "true")
        #expect(error("uniform", "{name: uw, rep_grad: true}").contains("rep_grad applies to the combiners of task gradients; uw weights the losses"))
        #expect(error("uniform", "{name: graddrop, rep_grad: true}").contains("rep_grad does not apply to graddrop: it keeps or drops each coordinate"))
        #expect(error("uniform", "{name: moco, rep_grad: true}").contains("running averages of past steps"))
        #expect(error("mtan", "{name: pcgrad, rep_grad: true}").contains("rep_grad needs one representation every head reads, as uniform and mola-grad have"))
        #expect(error("uniform", "{name: pcgrd, rep_grad: true}").contains("did you mean 'pcgrad'"))
        #expect(error("uniform", "{rep_grad: true}").contains("missing key 'name' in weighting"))
        #expect(error("uniform", "{name: pcgrad, repgrad: true}").contains("unknown key 'repgrad' in weighting"))
        #expect(error("uniform", "{name: pcgrad, rep_grad: maybe}").contains("expected true or false"))
    }

    /// Every combiner that allows it trains MoLA-Grad on both digit sets with rep_grad: the
    /// loss falls, the test accuracy is well above chance, and the report names the variant.
    @Test func everyCombinerTrainsOnTheRepresentation() throws {
        let tmp = TempDir()
        for balancer in Self.combiners {
            let (_, dir) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 48, evalEvery: 16,
                                                              extra: "weighting: {name: \(balancer.name), rep_grad: true}", output: balancer.name))
            let losses = metricsLines(dir).filter { $0["val_average"] != nil }.compactMap { $0["train_loss"] as? Double }
            #expect(losses.count == 3 && losses.last! < losses.first!, "\(balancer): \(losses)")
            let report = try RunReport.read(dir)
            #expect(report.test.average > 20, "\(balancer): \(report.test.perTask)")
            let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
            #expect(md.contains("\(balancer.name) (rep_grad)"), "\(balancer)")
        }
    }
}
