import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor
import MoLATrain
import Testing

@Suite struct GradientBalancingTests {
    /// PCGrad on hand-computed cases: conflicting gradients lose their components along
    /// each other; agreeing ones are summed untouched.
    @Test func pcgradProjectsOnlyConflicts() {
        var rng = RandomGenerator(seed: 1)
        // g1·g2 = −1: g1' = g1 + ½g2 = (½, ½), g2' = g2 + g1 = (0, 1).
        #expect(PCGrad().combine([[1, 0], [-1, 1]], rng: &rng) == [0.5, 1.5])
        #expect(PCGrad().combine([[1, 0], [1, 1]], rng: &rng) == [2, 1])
        // A third task that agrees with both leaves the pair's projections as they were.
        #expect(PCGrad().combine([[1, 0], [-1, 1], [0, 0.5]], rng: &rng) == [0.5, 2])
    }

    /// CAGrad on hand cases. Orthogonal unit gradients: by symmetry w = (½, ½), g_w = g₀,
    /// so d = (1 + c)·g₀/(1 + c²). Opposed gradients (g, −g): g₀ = 0 and d = 0.
    @Test func cagradHandCases() {
        let c = 0.4
        var rng0 = RandomGenerator(seed: 0)  // CAGrad draws nothing
        let d = CAGrad(c: c).combine([[1, 0], [0, 1]], rng: &rng0)
        let want = Float((1 + c) * 0.5 / (1 + c * c))
        #expect(d.allSatisfy { abs($0 - want) < 1e-5 }, "\(d) vs \(want)")
        #expect(CAGrad().combine([[1, 2], [-1, -2]], rng: &rng0).allSatisfy { abs($0) < 1e-6 })
        // A conflicting pair: the result moves towards the task the mean serves worst.
        let (g1, g2): ([Float], [Float]) = ([1, 0], [-0.5, 1])
        let out = CAGrad(c: 0.4).combine([g1, g2], rng: &rng0)
        let mean: [Float] = [0.25, 0.5]
        func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let worst = min(dot(mean, g1), dot(mean, g2)) / (dot(mean, mean).squareRoot())
        let improved = min(dot(out, g1), dot(out, g2)) / dot(out, out).squareRoot()
        #expect(improved > worst, "the worst task's alignment rises: \(improved) vs \(worst)")
    }

    /// Aligned-MTL on hand cases. Orthogonal gradients of norms 1 and 2: M = diag(1, 4),
    /// B = diag(1, ½), so the result g1 + ½g2 has both components of norm 1. Any
    /// gradients: the aligned ones G·B are orthogonal with norm √λ_min.
    @Test func alignedMTLEqualisesAndOrthogonalises() {
        func close(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-9 } }
        #expect(close(AlignedMTL().weights([[1, 0], [0, 2]]), [1, 0.5]))
        // Conflicting, unequal gradients: check the defining property on G·B directly.
        let g: [[Float]] = [[2, 1, 0], [-1, 1, 1], [0.5, -2, 1]]
        let alpha = AlignedMTL().weights(g)
        let result = (0..<3).map { i in zip(alpha, g).reduce(0.0) { $0 + $1.0 * Double($1.1[i]) } }
        // With B's columns b_j, G·b_j are orthogonal and equal-normed, so |Σ_j G·b_j|² = T·λ_min.
        let gram = (0..<3).map { i in (0..<3).map { j in zip(g[i], g[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } } }
        let (values, vectors) = SymmetricEigen.decompose(gram)
        for k in 0..<3 {  // M v = λ v
            let mv = (0..<3).map { i in (0..<3).reduce(0.0) { $0 + gram[i][$1] * vectors[$1][k] } }
            #expect(zip(mv, vectors.map { $0[k] * values[k] }).allSatisfy { abs($0 - $1) < 1e-9 })
        }
        let norm2 = result.reduce(0) { $0 + $1 * $1 }
        #expect(abs(norm2 - 3 * values.min()!) < 1e-6 * norm2, "\(norm2) vs \(3 * values.min()!)")
    }

    /// FAMO: equal losses give weights 1; unequal ones weights ∝ 1/ℓ (summing to T); a task
    /// whose loss stops falling gains weight at the next step, and an absent task gets 0.
    @Test func famoWeightsFollowLossDecrease() {
        var f = FAMO(tasks: 2), rng = RandomGenerator(seed: 0)  // FAMO draws nothing
        let first = f.weights(losses: [1, 1], rng: &rng)
        #expect(first.allSatisfy { abs($0 - 1) < 1e-6 }, "\(first)")
        let second = f.weights(losses: [0.5, 1], rng: &rng)  // task 0 fell, task 1 did not
        #expect(f.softmax[1] > f.softmax[0], "\(f.softmax)")
        // z ≈ (½, ½) after one small step: weights ≈ 2·(1/ℓ_t)/Σ(1/ℓ) = (4/3, 2/3), tilted to task 1.
        #expect(abs(second[0] + second[1] - 2) < 1e-6 && second[0] < 4.0 / 3 && second[1] > 2.0 / 3, "\(second)")
        let third = f.weights(losses: [0.4, nil], rng: &rng)
        #expect(third[1] == 0 && abs(third[0] - 2) < 1e-6, "\(third)")
        // The state round-trips through a checkpoint's JSON exactly.
        var copy = FAMO(tasks: 2)
        copy.state = try! JSONDecoder().decode([String: [Double]].self, from: JSONEncoder().encode(f.state))
        #expect(copy == f)
    }

    /// MGDA's weights: the min-norm point of the convex hull.
    @Test func mgdaFindsTheMinNormPoint() {
        func close(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-3 } }
        #expect(close(MGDA().weights([[1, 0], [0, 1]]), [0.5, 0.5]))
        #expect(close(MGDA().weights([[1, 0], [2, 0]]), [1, 0]))  // g1 is the hull's nearest point
        #expect(close(MGDA().weights([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), [1.0 / 3, 1.0 / 3, 1.0 / 3]))
        // Two tasks, closed form: α₁ = ((g2 − g1)·g2)/|g1 − g2|², clipped to [0, 1].
        let g1: [Float] = [2, 1], g2: [Float] = [-1, 3]
        let a1 = Double((g2[0] - g1[0]) * g2[0] + (g2[1] - g1[1]) * g2[1]) / Double((g1[0] - g2[0]) * (g1[0] - g2[0]) + (g1[1] - g2[1]) * (g1[1] - g2[1]))
        #expect(close(MGDA().weights([g1, g2]), [a1, 1 - a1]))
    }
}

@Suite(.serialized) struct ConflictTrainingTests {
    /// Every balancer trains on the two digit sets (loss falls, test accuracy clearly above
    /// chance after 48 steps, its own compare row; GLS and RLW weights sum to 1, so their
    /// steps are half of uniform's and 24 steps were too few); every evaluation records the per-stage conflict diagnostics, the report shows them, and
    /// compare has the mean task cosine.
    @Test func balancersTrainAndConflictsAreReported() throws {
        let tmp = TempDir()
        var dirs: [String] = []
        for (name, extra) in [("uniform", "")] + Balancer.all.map({ ($0.name, "weighting: \($0.name)") }) {
            let (_, dir) = try TinyData.train(TinyData.config(tmp, method: "uniform", steps: 48, evalEvery: 16, extra: extra, output: name))
            let lines = metricsLines(dir).filter { $0["val_average"] != nil }
            let losses = lines.compactMap { $0["train_loss"] as? Double }
            #expect(losses.count == 3 && losses.last! < losses.first!, "\(name): \(losses)")
            let conflict = try #require(lines.last?["conflict"] as? [String: [String: Any]], "\(name)")
            #expect(Set(conflict.keys) == ["stem", "stage1", "stage2", "stage3", "all"], "\(conflict.keys)")
            let cosine = conflict["all"]!["cosine"] as! [[Double]]
            #expect(cosine.count == 2 && cosine[0][0] == 1 && abs(cosine[0][1] - cosine[1][0]) < 1e-12 && abs(cosine[0][1]) <= 1)
            let report = try RunReport.read(dir)
            #expect(report.conflictCosine != nil && report.test.average > 20, "\(name) \(report.test.perTask)")
            let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
            #expect(md.contains("| stage1 |") && FileManager.default.fileExists(atPath: dir + "/conflict.svg"))
            dirs.append(dir)
        }
        let c = try Comparison.of(runs: dirs)
        #expect(c.rows.map(\.method) == ["uniform"] + Balancer.all.map { "uniform + \($0.name)" }.sorted())
        #expect(c.rows.allSatisfy { $0.conflictCosine != nil } && c.markdown.contains("Task cos"))
        let famo = metricsLines(tmp.path + "/famo").compactMap { $0["task_weights"] as? [String: Double] }
        #expect(famo.count == 3 && famo.allSatisfy { abs($0.values.reduce(0, +) - 1) < 1e-9 } && famo.last! != famo.first!, "\(famo)")
    }

    /// A balancer's state (a loss weighting's, GradVac's targets) lives in the checkpoint: a
    /// run stopped mid-way and resumed ends with the same weights and metrics as one that
    /// ran straight through.
    @Test(arguments: ["famo", "uw", "imtl-l", "rlw", "stch", "gradvac", "db-mtl", "moco", "{name: gradvac, rep_grad: true}"])
    func statefulBalancersResumeExactly(_ weighting: String) throws {
        let tmp = TempDir()
        let (_, a) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 12, evalEvery: 4, extra: "weighting: \(weighting)", output: "a"))
        let split = TinyData.config(tmp, method: "mola-grad", steps: 12, evalEvery: 4, extra: "weighting: \(weighting)", output: "b")
        _ = try TinyData.train(split, stopAfter: 6)
        let (_, b) = try TinyData.train(split, resume: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: a + "/checkpoints/latest/model.safetensors"))
                == Data(contentsOf: URL(fileURLWithPath: b + "/checkpoints/latest/model.safetensors")))
        let strip = { (m: [[String: Any]]) in m.map { $0.filter { $0.key != "seconds" } as NSDictionary } }
        #expect(strip(metricsLines(a)) == strip(metricsLines(b)))
        // The state is in balancer.safetensors (float64), not in state.json's text.
        let latest = b + "/checkpoints/latest"
        #expect(FileManager.default.fileExists(atPath: latest + "/balancer.safetensors"))
        #expect(try !String(contentsOfFile: latest + "/state.json", encoding: .utf8).contains("\"weighting\""))
    }

    /// DB-MTL keeps a running gradient per task, T × the shared parameters: in the
    /// checkpoint that is float64 bytes, 8 per number, where JSON text took about 20. A
    /// checkpoint of the older form, the state in state.json, still resumes alike.
    @Test func balancerStateIsBinaryAndOldCheckpointsResume() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 8, evalEvery: 4, extra: "weighting: db-mtl", output: "a")
        let (_, a) = try TinyData.train(config)
        let latest = a + "/checkpoints/latest"
        let c = try TrainConfig.load(config)
        let model = ModelFactory.make(c, input: FeatureShape(height: 12, width: 12, channels: 1), classes: [10, 10], adapterCount: 2)
        let shared = model.store.ranges { $0.isShared }.reduce(0) { $0 + $1.range.count }
        let (state, _) = try Checkpoint.load(from: latest, into: model.store, configHash: c.hash)
        let w = try #require(state.weighting)
        #expect(w.values.reduce(0) { $0 + $1.count } >= 2 * shared, "two running gradients of \(shared) numbers: \(w.mapValues(\.count))")
        let size = try FileManager.default.attributesOfItem(atPath: latest + "/balancer.safetensors")[.size] as! Int
        #expect(size < 8 * w.values.reduce(0) { $0 + $1.count } + 4096)

        // The older form: the state in state.json, no balancer.safetensors.
        var old = state
        old.files["balancer.safetensors"] = nil
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try enc.encode(old).write(to: URL(fileURLWithPath: latest + "/state.json"))
        try FileManager.default.removeItem(atPath: latest + "/balancer.safetensors")
        let (back, _) = try Checkpoint.load(from: latest, into: model.store, configHash: c.hash)
        #expect(back.weighting == w)
    }
}
