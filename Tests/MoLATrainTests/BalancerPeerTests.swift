import Foundation
import MoLASupport
import MoLATrain
import Testing

/// The balancers against the peers that define them, from `Tests/Fixtures/balancer-peers.json`
/// (written by `scripts/make-balancer-fixtures.py` with torch 2.15, TorchJD 0.18, LibMTL
/// 1.1.5 and, for STCH, DB-MTL and MoCo, LibMTL's GitHub source; CI has no PyTorch): TorchJD's aggregators on Jacobians of 2, 3 and 9 tasks,
/// conflicting and aligned, and LibMTL's loss weightings, whose factors are the gradient of
/// LibMTL's own objective with respect to each loss (taken by autograd).
@Suite struct BalancerPeerTests {
    struct Case: Decodable { var name: String; var rows: [[Double]] }
    struct Scales: Decodable { var factors: [Double]; var scales: [Double] }
    struct DWAFixture: Decodable { var epochs: [[Double]]; var factors: [[Double]] }
    struct Sequence: Decodable { var steps: [[[Double]]]; var losses: [[Double]]?; var combined: [[Double]] }
    struct GradNormFixture: Decodable { var first: [Double]; var steps: [[[Double]]]; var losses: [[Double]]; var combined: [[Double]]; var scales: [[Double]] }
    struct STCHFixture: Decodable { var epochs: [Int]; var losses: [[Double]]; var factors: [[Double]] }
    struct Peers: Decodable {
        var jacobians: [Case]
        var combined: [String: [[Double]]]
        var uniforms: [[Double]]
        var gradvac: [Sequence]
        var losses: [[Double]]
        var gls: [[Double]]
        var dwa: DWAFixture
        var steps: [[Double]]
        var uw: [Scales]
        var imtlL: [Scales]
        var dbMTL: [Sequence]
        var moco: [Sequence]
        var stch: STCHFixture
        var gradnorm: [GradNormFixture]
        enum CodingKeys: String, CodingKey {
            case jacobians, combined, uniforms, gradvac, losses, gls, dwa, steps, uw, moco, stch, gradnorm, imtlL = "imtl-l", dbMTL = "db-mtl"
        }
    }

    static let peers: Peers = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures/balancer-peers.json"
        return try! JSONDecoder().decode(Peers.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }()

    /// The largest difference relative to the peer vector's norm.
    static func relativeError(_ ours: [Float], _ peer: [Double]) -> Double {
        let norm = peer.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return zip(ours, peer).map { abs(Double($0) - $1) }.max()! / max(norm, 1e-30)
    }

    /// UPGrad, DualProj, IMTL-G and ConFIG give TorchJD's vector within 1e-5 of its norm
    /// (ours sums in Float the Double weights of Float gradients; TorchJD works in float64,
    /// so the difference is about Float's rounding).
    @Test(arguments: ["upgrad", "dualproj", "imtl-g", "config"])
    func aggregatorsGiveTorchJDsVector(_ name: String) throws {
        guard case .combinesGradients(let make) = try #require(Balancer.named(name)).kind else { Issue.record("not an aggregator"); return }
        for (c, want) in zip(Self.peers.jacobians, try #require(Self.peers.combined[name])) {
            var rng = RandomGenerator(seed: 0)
            let ours = make(BalancerSetup(tasks: 9)).combine(c.rows.map { $0.map(Float.init) }, rng: &rng)
            let error = Self.relativeError(ours, want)
            #expect(error < 1e-5, "\(name), \(c.name): relative error \(error)")
        }
    }

    /// FairGrad at α = 1 and 2: TorchJD solves G·x = x^(−1/α) by scipy's least squares
    /// (tolerances 1e-8), ours by Newton to rounding; the solution is unique.
    @Test(arguments: [1.0, 2.0]) func fairgradGivesTorchJDsVector(_ alpha: Double) throws {
        for (c, want) in zip(Self.peers.jacobians, try #require(Self.peers.combined["fairgrad-\(Int(alpha))"])) {
            var rng = RandomGenerator(seed: 0)
            let error = Self.relativeError(FairGrad(alpha: alpha).combine(c.rows.map { $0.map(Float.init) }, rng: &rng), want)
            #expect(error < 1e-5, "α \(alpha), \(c.name): relative error \(error)")
        }
    }

    /// Nash-MTL: ours solves the paper's Ĝα = 1/α exactly (checked to 1e-9). TorchJD stops
    /// its convex sub-problems once ‖Ĝα − 1/α‖ < 1e-3, yet on these cases it had converged:
    /// its vector is met within 1e-5 of its norm.
    @Test func nashMTLSolvesThePapersEquationAndMeetsTorchJD() throws {
        for (c, want) in zip(Self.peers.jacobians, try #require(Self.peers.combined["nash-mtl"])) {
            let rows = c.rows.map { $0.map(Float.init) }
            var rng = RandomGenerator(seed: 0)
            let error = Self.relativeError(NashMTL().combine(rows, rng: &rng), want)
            #expect(error < 1e-5, "\(c.name): relative error \(error)")
            var unclipped = NashMTL()
            unclipped.maxNorm = 0
            let alpha = unclipped.weights(rows)
            let g = rows.map { a in rows.map { b in zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } } }
            let frobenius = g.joined().reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in g.indices {
                let lhs = g[i].indices.reduce(0.0) { $0 + g[i][$1] / frobenius * alpha[$1] }
                #expect(alpha[i] > 0 && abs(lhs - 1 / alpha[i]) < 1e-9 / alpha[i], "\(c.name): row \(i)")
            }
        }
    }

    /// GradDrop with TorchJD's uniform draws (recorded by the script) gives its vector.
    @Test func graddropGivesTorchJDsVector() throws {
        for ((c, want), u) in zip(zip(Self.peers.jacobians, try #require(Self.peers.combined["graddrop"])), Self.peers.uniforms) {
            let error = Self.relativeError(GradDrop().combine(c.rows.map { $0.map(Float.init) }, uniforms: u), want)
            #expect(error < 1e-6, "\(c.name): relative error \(error)")
        }
    }

    /// GradVac over four steps (its targets φ̂ carry over), the other tasks visited in a fixed
    /// order as the script fixed TorchJD's; and its state through a checkpoint's JSON.
    @Test func gradvacFollowsTorchJDOverSteps() throws {
        for sequence in Self.peers.gradvac {
            let ours = GradVac()
            ours.shuffles = false
            var rng = RandomGenerator(seed: 0)
            for (k, (j, want)) in zip(sequence.steps, sequence.combined).enumerated() {
                let rows = j.map { $0.map(Float.init) }
                if k == 2 {  // a copy from the state half-way goes on alike
                    let copy = GradVac()
                    copy.shuffles = false
                    copy.state = try JSONDecoder().decode([String: [Double]].self, from: JSONEncoder().encode(ours.state))
                    let before = ours.state
                    #expect(copy.combine(rows, rows: TaskRows(count: rows.count), rng: &rng) == ours.combine(rows, rows: TaskRows(count: rows.count), rng: &rng))
                    ours.state = before
                }
                let error = Self.relativeError(ours.combine(rows, rows: TaskRows(count: rows.count), rng: &rng), want)
                #expect(error < 1e-5, "\(rows.count) tasks, step \(k): relative error \(error)")
            }
        }
    }

    /// DB-MTL and MoCo over four steps of Jacobians and losses (their running averages and
    /// MoCo's λ carry over), against LibMTL's own `backward` on a stand-in model; and their
    /// state through a checkpoint's JSON.
    @Test(arguments: ["db-mtl", "moco"]) func runningAveragesFollowLibMTL(_ name: String) throws {
        guard case .combinesGradients(let make) = try #require(Balancer.named(name)).kind else { return }
        for sequence in name == "moco" ? Self.peers.moco : Self.peers.dbMTL {
            var ours = make(BalancerSetup(tasks: 9)), rng = RandomGenerator(seed: 0)
            for (k, (j, want)) in zip(sequence.steps, sequence.combined).enumerated() {
                let rows = j.map { $0.map(Float.init) }, losses = sequence.losses![k]
                if k == 2 {  // a copy from the state half-way goes on alike
                    var copy = make(BalancerSetup(tasks: 9))
                    copy.state = try JSONDecoder().decode([String: [Double]].self, from: JSONEncoder().encode(ours.state))
                    let before = ours.state
                    #expect(copy.combine(rows, rows: TaskRows(tasks: Array(rows.indices), losses: losses, step: k), rng: &rng)
                            == ours.combine(rows, rows: TaskRows(tasks: Array(rows.indices), losses: losses, step: k), rng: &rng))
                    ours.state = before
                }
                let error = Self.relativeError(ours.combine(rows, rows: TaskRows(tasks: Array(rows.indices), losses: losses, step: k), rng: &rng), want)
                #expect(error < 1e-5, "\(name), \(rows.count) tasks, step \(k): relative error \(error)")
            }
        }
    }

    /// GradNorm: a first epoch of two steps (the plain sum; the losses' means become L₀),
    /// then four steps of its second epoch against LibMTL's `backward` and Adam (lr 0.01) on
    /// its loss scales.
    @Test func gradnormFollowsLibMTL() {
        for f in Self.peers.gradnorm {
            let t = f.first.count, ours = GradNorm(tasks: t, learningRate: 0.01, stepsPerEpoch: 4)
            var rng = RandomGenerator(seed: 0)
            let rows = f.steps[0].map { $0.map(Float.init) }
            for (k, share) in [0.75, 1.25, 1.0, 1.0].enumerated() {
                let sum = ours.combine(rows, rows: TaskRows(tasks: Array(0..<t), losses: f.first.map { $0 * share }, step: k), rng: &rng)
                #expect(sum == weightedSum(rows))
            }
            for (k, (j, want)) in zip(f.steps, f.combined).enumerated() {
                let error = Self.relativeError(ours.combine(j.map { $0.map(Float.init) }, rows: TaskRows(tasks: Array(0..<t), losses: f.losses[k], step: 4 + k), rng: &rng), want)
                #expect(error < 1e-5, "\(t) tasks, step \(k): relative error \(error)")
                #expect(zip(ours.logits, f.scales[k]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(t) tasks, step \(k): \(ours.logits) vs \(f.scales[k])")
            }
        }
    }

    /// The plain sum of the rows, as a combiner sums in Double.
    func weightedSum(_ rows: [[Float]]) -> [Float] { (0..<rows[0].count).map { k in Float(rows.reduce(0.0) { $0 + Double($1[k]) }) } }

    /// STCH over seven epochs of two steps: 1/ℓ in the four warm-up epochs, the nadir from
    /// the fifth's losses, then LibMTL's smooth Tchebycheff factors.
    @Test func stchGivesLibMTLsFactorsPerEpoch() {
        var w = SmoothTchebycheff(tasks: 3, stepsPerEpoch: 2), rng = RandomGenerator(seed: 0)
        let f = Self.peers.stch
        for (k, (l, want)) in zip(f.losses, f.factors).enumerated() {
            let ours = w.weights(losses: l, step: k, rng: &rng)
            #expect(f.epochs[k] == k / 2)
            #expect(zip(ours, want).allSatisfy { abs($0 - $1) <= 1e-9 * abs($1) }, "step \(k): \(ours) vs \(want)")
        }
    }

    /// What the dual-cone projections promise, checked directly: UPGrad's and DualProj's
    /// results conflict with no task (g_t·d ≥ 0, to rounding), also where the rows conflict.
    @Test(arguments: ["upgrad", "dualproj"])
    func projectionsConflictWithNoTask(_ name: String) throws {
        guard case .combinesGradients(let make) = try #require(Balancer.named(name)).kind else { return }
        for c in Self.peers.jacobians {
            var rng = RandomGenerator(seed: 0)
            let rows = c.rows.map { $0.map(Float.init) }
            let d = make(BalancerSetup(tasks: 9)).combine(rows, rng: &rng)
            let scale = rows.map { r in r.reduce(0) { $0 + Double($1 * $1) }.squareRoot() }.max()! * d.reduce(0) { $0 + Double($1 * $1) }.squareRoot()
            for (t, r) in rows.enumerated() {
                let dot = zip(r, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(dot > -1e-3 * scale, "\(name), \(c.name): task \(t) conflicts (\(dot))")
            }
        }
    }

    /// Hand cases. Orthogonal gradients conflict with nothing: UPGrad and DualProj give the
    /// mean. Opposed ones (g, −g): only 0 agrees with both. IMTL-G on orthogonal gradients of
    /// norms 1 and 2: α ∝ (1/1, 2/4), so (⅔, ⅓) and d = (⅔, ⅔), the same projection on
    /// both. ConFIG on e₁, e₂: direction (1, 1)/√2 at length √2. GLS at losses (1, 4): the
    /// geometric mean 2, factors 2/(2·1) and 2/(2·4).
    @Test func handCases() {
        var rng = RandomGenerator(seed: 0)
        func close(_ a: [Float], _ b: [Float], _ tol: Float = 1e-6) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) <= tol } }
        #expect(close(UPGrad().combine([[1, 0], [0, 2]], rng: &rng), [0.5, 1]))
        #expect(close(DualProj().combine([[1, 0], [0, 2]], rng: &rng), [0.5, 1]))
        #expect(close(UPGrad().combine([[1, 2], [-1, -2]], rng: &rng), [0, 0], 1e-3))
        #expect(close(DualProj().combine([[1, 2], [-1, -2]], rng: &rng), [0, 0], 1e-3))
        #expect(close(IMTLG().combine([[1, 0], [0, 2]], rng: &rng), [2.0 / 3, 2.0 / 3]))
        #expect(close(ConFIG().combine([[1, 0], [0, 1]], rng: &rng), [1, 1]))
        var gls = GeometricLossStrategy()
        #expect(gls.weights(losses: [1, 4, nil], step: 0, rng: &rng) == [1, 0.25, 0])
    }

    /// GLS: the derivative of LibMTL's (Π ℓ)^(1/T) at 2, 3 and 9 task losses.
    @Test func glsGivesLibMTLsFactors() {
        for (l, want) in zip(Self.peers.losses, Self.peers.gls) {
            var w = GeometricLossStrategy(), rng = RandomGenerator(seed: 0)
            let ours = w.weights(losses: l, step: 0, rng: &rng)
            #expect(zip(ours, want).allSatisfy { abs($0 - $1) <= 1e-12 * abs($1) }, "\(ours) vs \(want)")
        }
    }

    /// DWA: LibMTL's weights for epochs 0…5 from five epochs' mean losses. Each epoch here is
    /// two steps whose losses average to the epoch's mean.
    @Test func dwaGivesLibMTLsFactorsPerEpoch() {
        var w = DynamicWeightAverage(tasks: 3, stepsPerEpoch: 2), rng = RandomGenerator(seed: 0)
        for (e, want) in Self.peers.dwa.factors.enumerated() {
            let mean = e < Self.peers.dwa.epochs.count ? Self.peers.dwa.epochs[e] : [1, 1, 1]
            let first = w.weights(losses: mean.map { $0 * 0.75 }, step: 2 * e, rng: &rng)
            let second = w.weights(losses: mean.map { $0 * 1.25 }, step: 2 * e + 1, rng: &rng)
            #expect(first == second)
            #expect(zip(first, want).allSatisfy { abs($0 - $1) <= 1e-12 * abs($1) }, "epoch \(e): \(first) vs \(want)")
        }
        // Its state (the epoch's sums, the last two means) through a checkpoint's JSON: the
        // copy goes on exactly as the original.
        var copy = DynamicWeightAverage(tasks: 3, stepsPerEpoch: 2)
        copy.state = try! JSONDecoder().decode([String: [Double]].self, from: JSONEncoder().encode(w.state))
        for step in 12..<18 {
            let l = [1.0 / Double(step), 0.5, Double(step % 3) + 1]
            #expect(copy.weights(losses: l, step: step, rng: &rng) == w.weights(losses: l, step: step, rng: &rng))
        }
    }

    /// UW and IMTL-L: LibMTL's loss factors and, after each of six steps, the scales
    /// `torch.optim.Adam` (lr 0.01) leaves.
    @Test(arguments: [("uw", LearnedLossScales.Form.uncertainty), ("imtl-l", .impartial)])
    func learnedScalesFollowLibMTLAndAdam(_ name: String, _ form: LearnedLossScales.Form) {
        var w = LearnedLossScales(form, tasks: 3, learningRate: 0.01), rng = RandomGenerator(seed: 0)
        let peer = name == "uw" ? Self.peers.uw : Self.peers.imtlL
        for (k, (l, want)) in zip(Self.peers.steps, peer).enumerated() {
            let factors = w.weights(losses: l, step: k, rng: &rng)
            #expect(zip(factors, want.factors).allSatisfy { abs($0 - $1) <= 1e-9 * abs($1) }, "\(name) step \(k): \(factors) vs \(want.factors)")
            #expect(zip(w.scales, want.scales).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($1)) }, "\(name) step \(k): \(w.scales) vs \(want.scales)")
        }
    }

    /// RLW's draws are the peer's in distribution only (torch's generator is not ours), so
    /// what is deterministic is checked: weights on the simplex over the batch's tasks, a
    /// new draw each step, the same draw from the same step's stream (every rank, a resume).
    @Test func rlwDrawsSoftmaxWeightsPerStep() {
        var w = RandomLossWeights()
        var a = RandomGenerator(seed: 5, stream: 1), b = RandomGenerator(seed: 5, stream: 1)
        let first = w.weights(losses: [1, 2, nil, 4], step: 0, rng: &a)
        #expect(abs(first.reduce(0, +) - 1) < 1e-12 && first[2] == 0 && first.allSatisfy { $0 >= 0 })
        #expect(w.weights(losses: [1, 2, nil, 4], step: 0, rng: &b) == first)
        #expect(w.weights(losses: [1, 2, nil, 4], step: 1, rng: &a) != first)
        // Over many draws each of T = 3 tasks averages 1/3.
        var sums = [0.0, 0, 0], rng = RandomGenerator(seed: 9)
        for s in 0..<4000 { for (t, v) in w.weights(losses: [1, 1, 1], step: s, rng: &rng).enumerated() { sums[t] += v / 4000 } }
        #expect(sums.allSatisfy { abs($0 - 1.0 / 3) < 0.02 }, "\(sums)")
    }
}
