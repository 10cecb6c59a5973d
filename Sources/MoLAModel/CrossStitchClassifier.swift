import MoLATensor

/// Cross-Stitch networks (Misra et al. 2016): one backbone column per task, and after the
/// stem and after every stage but the last a learned T×T mixing of the columns' feature
/// maps, y_i = Σ_j α_ij x_j (α starts at 0.9 on the diagonal, 0.1/(T−1) off it, the
/// paper's). Every image goes through every column (the mixing is per image); task t's
/// head reads column t.
public final class CrossStitchClassifier: TaskModel {
    public let store: ParameterStore
    public let columns: [ResNet]
    /// One unit per mixing point: after the stem, then after each stage but the last.
    let units: [ParameterRef]
    public let heads: TaskHeads
    private var unitInputs: [[Tensor]] = []  // per unit, per column: the maps it mixed
    private var pooled: [Tensor] = []
    private var mixed = Tensor(zeros: [0])
    private var dLogits: [Tensor] = []
    private var layout = BatchLayout(tasks: [], training: false)

    public init(store: ParameterStore, config: BackboneConfig, input: FeatureShape, classes: [Int]) {
        self.store = store
        let t = classes.count
        columns = (0..<t).map { ResNet(store, name: "column\($0)", config: config, input: input) }
        let start = (0..<(t * t)).map { $0 / t == $0 % t ? Float(0.9) : t > 1 ? 0.1 / Float(t - 1) : 0 }
        units = (0..<config.blocks.count).map { store.add("gates.stitch\($0)", shape: [t, t], .values(start), decay: false, role: .gate) }
        heads = TaskHeads(store, features: columns[0].features, classes: classes)
    }

    /// y_i = Σ_j α_ij x_j over the columns' maps.
    private func stitch(_ unit: Int, _ x: [Tensor]) -> [Tensor] {
        let t = columns.count, a = store.value(units[unit])
        unitInputs[unit] = x.map { m in var c = Tensor(uninitialized: m.shape); c.mutablePointer().update(from: m.pointer, count: m.count); return c }
        return (0..<t).map { i in
            var y = Tensor(zeros: x[0].shape)
            for j in 0..<t { Elementwise.axpy(y.count, alpha: a[i * t + j], x[j].pointer, y.mutablePointer(), engine: store.engine) }
            return y
        }
    }

    /// dx_j = Σ_i α_ij dy_i; dα_ij += ⟨dy_i, x_j⟩.
    private func stitchBackward(_ unit: Int, _ dy: [Tensor]) -> [Tensor] {
        let t = columns.count, a = store.value(units[unit]), da = store.gradient(units[unit])
        for i in 0..<t { for j in 0..<t {
            let (p, q) = (dy[i].pointer, unitInputs[unit][j].pointer)
            var dot = 0.0
            for k in 0..<dy[i].count { dot += Double(p[k]) * Double(q[k]) }
            da[i * t + j] += Float(dot)
        } }
        return (0..<t).map { j in
            var dx = Tensor(zeros: dy[0].shape)
            for i in 0..<t { Elementwise.axpy(dx.count, alpha: a[i * t + j], dy[i].pointer, dx.mutablePointer(), engine: store.engine) }
            return dx
        }
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        self.layout = layout
        unitInputs = Array(repeating: [], count: units.count)
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

    /// Each unit's α (T×T, row i: how column i's next input mixes the columns).
    public var stitchWeights: [[Float]] { units.map { Array(UnsafeBufferPointer(start: store.value($0), count: $0.count)) } }
    public var columnMixing: [[Float]]? { stitchWeights }
}
