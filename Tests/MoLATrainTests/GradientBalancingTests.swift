import Foundation
import MoLAData
import MoLATensor
import MoLATrain
import Testing

@Suite struct GradientBalancingTests {
    /// PCGrad on hand-computed cases: conflicting gradients lose their components along
    /// each other; agreeing ones are summed untouched.
    @Test func pcgradProjectsOnlyConflicts() {
        var rng = RandomGenerator(seed: 1)
        // g1·g2 = −1: g1' = g1 + ½g2 = (½, ½), g2' = g2 + g1 = (0, 1).
        #expect(GradientBalancing.pcgrad([[1, 0], [-1, 1]], rng: &rng) == [0.5, 1.5])
        #expect(GradientBalancing.pcgrad([[1, 0], [1, 1]], rng: &rng) == [2, 1])
        // A third task that agrees with both leaves the pair's projections as they were.
        #expect(GradientBalancing.pcgrad([[1, 0], [-1, 1], [0, 0.5]], rng: &rng) == [0.5, 2])
    }

    /// CAGrad on hand cases. Orthogonal unit gradients: by symmetry w = (½, ½), g_w = g₀,
    /// so d = (1 + c)·g₀/(1 + c²). Opposed gradients (g, −g): g₀ = 0 and d = 0.
    @Test func cagradHandCases() {
        let c = 0.4
        let d = GradientBalancing.cagrad([[1, 0], [0, 1]], c: c)
        let want = Float((1 + c) * 0.5 / (1 + c * c))
        #expect(d.allSatisfy { abs($0 - want) < 1e-5 }, "\(d) vs \(want)")
        #expect(GradientBalancing.cagrad([[1, 2], [-1, -2]]).allSatisfy { abs($0) < 1e-6 })
        // A conflicting pair: the result moves towards the task the mean serves worst.
        let (g1, g2): ([Float], [Float]) = ([1, 0], [-0.5, 1])
        let out = GradientBalancing.cagrad([g1, g2], c: 0.4)
        let mean: [Float] = [0.25, 0.5]
        func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let worst = min(dot(mean, g1), dot(mean, g2)) / (dot(mean, mean).squareRoot())
        let improved = min(dot(out, g1), dot(out, g2)) / dot(out, out).squareRoot()
        #expect(improved > worst, "the worst task's alignment rises: \(improved) vs \(worst)")
    }

    /// MGDA's weights: the min-norm point of the convex hull.
    @Test func mgdaFindsTheMinNormPoint() {
        func close(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-3 } }
        #expect(close(GradientBalancing.mgdaWeights([[1, 0], [0, 1]]), [0.5, 0.5]))
        #expect(close(GradientBalancing.mgdaWeights([[1, 0], [2, 0]]), [1, 0]))  // g1 is the hull's nearest point
        #expect(close(GradientBalancing.mgdaWeights([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), [1.0 / 3, 1.0 / 3, 1.0 / 3]))
        // Two tasks, closed form: α₁ = ((g2 − g1)·g2)/|g1 − g2|², clipped to [0, 1].
        let g1: [Float] = [2, 1], g2: [Float] = [-1, 3]
        let a1 = Double((g2[0] - g1[0]) * g2[0] + (g2[1] - g1[1]) * g2[1]) / Double((g1[0] - g2[0]) * (g1[0] - g2[0]) + (g1[1] - g2[1]) * (g1[1] - g2[1]))
        #expect(close(GradientBalancing.mgdaWeights([g1, g2]), [a1, 1 - a1]))
    }
}

@Suite(.serialized) struct ConflictTrainingTests {
    /// PCGrad and MGDA train on the digits (loss falls, their own compare rows); every
    /// evaluation records the per-stage conflict diagnostics, the report shows them, and
    /// compare has the mean task cosine.
    @Test func balancersTrainAndConflictsAreReported() throws {
        let tmp = TempDir()
        var dirs: [String] = []
        for (name, extra) in [("uniform", ""), ("pcgrad", "weighting: pcgrad"), ("mgda", "weighting: mgda"), ("cagrad", "weighting: cagrad")] {
            let (_, dir) = try TinyData.train(TinyData.config(tmp, method: "uniform", steps: 24, evalEvery: 8, extra: extra, output: name))
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
        let c = try Comparison(runDirectories: dirs)
        #expect(c.rows.map(\.method) == ["uniform", "uniform + cagrad", "uniform + mgda", "uniform + pcgrad"])
        #expect(c.rows.allSatisfy { $0.conflictCosine != nil } && c.markdown.contains("Task cos"))
    }
}
