import Foundation
import MoLATensor

/// One backbone column per task, and after the stem and after every stage but the last a
/// T×T mixing of the columns' feature maps, y_i = Σ_j α_ij x_j. Every image goes through
/// every column (the mixing is per image); task t's head reads column t. Two methods:
/// - Cross-Stitch networks (Misra et al. 2016): α learned as it is (starting at 0.9 on the
///   diagonal, 0.1/(T−1) off it, the paper's).
/// - LTB, learning to branch (Guo et al. 2020): each row of α one parent column drawn from
///   learned logits (`ColumnBranching`), which start equal (LibMTL's ones).
public final class CrossStitchClassifier: TaskModel {
    public enum Mixing: Sendable { case stitch, branching }
    public let store: ParameterStore
    public let columns: [ResNet]
    public let mixing: Mixing
    /// One unit per mixing point: after the stem, then after each stage but the last; α
    /// itself (stitch), or the logits of each column's parent (branching).
    let units: [ParameterRef]
    public let heads: TaskHeads
    private var branching: [ColumnBranching]
    private var progress = TrainingProgress(step: 0, epoch: 0, epochs: 1, seed: 0)
    private var alphas: [[Float]] = []  // per unit: the α of the last forward
    private var unitInputs: [[Tensor]] = []  // per unit, per column: the maps it mixed
    private var pooled: [Tensor] = []
    private var mixed = Tensor(zeros: [0])
    private var dLogits: [Tensor] = []
    private var layout = BatchLayout(tasks: [], training: false)

    public init(store: ParameterStore, config: BackboneConfig, input: FeatureShape, classes: [Int], mixing: Mixing = .stitch) {
        self.store = store
        self.mixing = mixing
        let t = classes.count
        columns = (0..<t).map { ResNet(store, name: "column\($0)", config: config, input: input) }
        let start = mixing == .branching ? [Float](repeating: 1, count: t * t)
            : (0..<(t * t)).map { $0 / t == $0 % t ? Float(0.9) : t > 1 ? 0.1 / Float(t - 1) : 0 }
        let name = mixing == .branching ? "gates.branch" : "gates.stitch"
        units = (0..<config.blocks.count).map { store.add("\(name)\($0)", shape: [t, t], .values(start), decay: false, role: .gate) }
        branching = units.map { _ in ColumnBranching(columns: t) }
        heads = TaskHeads(store, features: columns[0].features, classes: classes)
    }

    public func beginStep(_ progress: TrainingProgress) { self.progress = progress }

    /// y_i = Σ_j α_ij x_j over the columns' maps.
    private func stitch(_ unit: Int, _ x: [Tensor]) -> [Tensor] {
        let t = columns.count
        let a = mixing == .stitch ? Array(UnsafeBufferPointer(start: store.value(units[unit]), count: t * t))
            : branching[unit].mixing(logits: store.value(units[unit]), unit: unit, progress: progress, training: layout.training)
        alphas[unit] = a
        unitInputs[unit] = x.map { m in var c = Tensor(uninitialized: m.shape); c.mutablePointer().update(from: m.pointer, count: m.count); return c }
        return (0..<t).map { i in
            var y = Tensor(zeros: x[0].shape)
            for j in 0..<t { Elementwise.axpy(y.count, alpha: a[i * t + j], x[j].pointer, y.mutablePointer(), engine: store.engine) }
            return y
        }
    }

    /// dx_j = Σ_i α_ij dy_i; dα_ij += ⟨dy_i, x_j⟩.
    private func stitchBackward(_ unit: Int, _ dy: [Tensor]) -> [Tensor] {
        let t = columns.count, a = alphas[unit]
        var da = [Float](repeating: 0, count: t * t)
        for i in 0..<t { for j in 0..<t {
            let (p, q) = (dy[i].pointer, unitInputs[unit][j].pointer)
            var dot = 0.0
            for k in 0..<dy[i].count { dot += Double(p[k]) * Double(q[k]) }
            da[i * t + j] = Float(dot)
        } }
        switch mixing {
        case .stitch: for k in 0..<(t * t) { store.gradient(units[unit])[k] += da[k] }
        case .branching: branching[unit].backward(da, into: store.gradient(units[unit]))
        }
        return (0..<t).map { j in
            var dx = Tensor(zeros: dy[0].shape)
            for i in 0..<t { Elementwise.axpy(dx.count, alpha: a[i * t + j], dy[i].pointer, dx.mutablePointer(), engine: store.engine) }
            return dx
        }
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        self.layout = layout
        unitInputs = Array(repeating: [], count: units.count)
        alphas = Array(repeating: [], count: units.count)
        let stages = columns[0].stageBlocks
        var h = stitch(0, columns.map { $0.forwardStem(images, layout: layout) })
        for (s, range) in stages.enumerated() {
            h = zip(columns, h).map { $0.forwardBlocks(range, $1, layout: layout) }
            if s + 1 < units.count { h = stitch(s + 1, h) }
        }
        let f = heads.features
        pooled = zip(columns, h).map { c, x in
            let p = c.pool(x, batch: layout.count)
            var copy = Tensor(uninitialized: p.shape); copy.mutablePointer().update(from: p.pointer, count: p.count); return copy
        }
        mixed.reuse([layout.count, f])
        for g in layout.groups {
            (mixed.mutablePointer() + g.range.lowerBound * f).update(from: pooled[g.task].pointer + g.range.lowerBound * f, count: g.range.count * f)
        }
        return heads.forward(mixed, layout: layout)
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let loss = classificationLoss(logits: heads.logits, heads: heads, labels: labels, layout: layout, dLogits: &dLogits)
        let dMixed = heads.backward(dLogits)
        let f = heads.features
        var g: [Tensor] = columns.indices.map { c in
            var d = Tensor(zeros: [layout.count, f])
            for grp in layout.groups where grp.task == c {
                (d.mutablePointer() + grp.range.lowerBound * f).update(from: dMixed.pointer + grp.range.lowerBound * f, count: grp.range.count * f)
            }
            return columns[c].unpool(d)
        }
        let stages = columns[0].stageBlocks
        for (s, range) in stages.enumerated().reversed() {
            if s + 1 < units.count { g = stitchBackward(s + 1, g) }
            g = zip(columns, g).map { $0.backwardBlocks(range, $1) }
        }
        g = stitchBackward(0, g)
        for (c, d) in zip(columns, g) { c.backwardStem(d) }
        return BatchLoss(classification: loss, auxiliary: 0)
    }

    public var convolutions: [(name: String, conv: Conv)] {
        columns.enumerated().flatMap { c, r in r.convolutions.map { ("column\(c).\($0.name)", $0.conv) } }
    }

    /// Each unit's α (T×T, row i: how column i's next input mixes the columns); for LTB
    /// the probability of each parent, softmax of the logits.
    public var stitchWeights: [[Float]] {
        units.map { u in
            let v = Array(UnsafeBufferPointer(start: store.value(u), count: u.count))
            guard mixing == .branching else { return v }
            let t = columns.count
            return (0..<(t * t)).map { k in
                let row = v[(k / t * t)..<(k / t * t + t)], top = row.max()!
                return exp(v[k] - top) / row.reduce(0) { $0 + exp($1 - top) }
            }
        }
    }
    public var columnMixing: [[Float]]? { stitchWeights }
}
