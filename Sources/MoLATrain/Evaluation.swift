import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor

/// Accuracy per task (in %) of a model on a split, in eval mode (BatchNorm running
/// statistics, no augmentation) — top-1, or for a multi-label task MedMNIST's mean over
/// labels of the accuracy at threshold ½ — each task's AUC, balanced accuracy, recall and
/// confusion matrix, and the mean router weights per task when there are any.
public struct Evaluation: Codable, Equatable, Sendable {
    /// Correct decisions per task: one per image, or one per label for a multi-label task.
    public var correct: [Int]
    /// Images per task.
    public var counts: [Int]
    /// Decisions per image of each task (nil: one for every task).
    public var decisionsPerImage: [Int]?
    public var loss: Double
    /// task × K mean adapter weights (MoLA-Router, HydraLoRA), or expert gate weights (MMoE, CGC, DSelect-k).
    public var routerWeights: [[Double]]?
    /// Per task, from the softmax probabilities of all its images.
    public var metrics: [ClassificationMetrics] = []

    public var perTask: [Double] {
        correct.indices.map { t in
            let decisions = counts[t] * (decisionsPerImage?[t] ?? 1)
            return decisions > 0 ? 100 * Double(correct[t]) / Double(decisions) : 0
        }
    }
    /// The plain mean of the per-task accuracies (the tables' "Avg").
    public var average: Double { perTask.isEmpty ? 0 : perTask.reduce(0, +) / Double(perTask.count) }
    /// AUC by task name, for the tasks where it is defined.
    public func auc(_ names: [String]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(names, metrics).compactMap { n, m in m.auc.map { (n, $0) } })
    }
    /// The mean AUC over the tasks; nil when a task's is undefined.
    public var aucAverage: Double? { ClassificationMetrics.meanIfDefined(metrics.map(\.auc)) }
    public func balancedAccuracy(_ names: [String]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(names, metrics.map(\.balancedAccuracy)))
    }

    /// With `parallel`, each rank evaluates its 1/N of the split and the counts are summed
    /// (a split smaller than the rank count is evaluated whole on every rank).
    public static func run(_ model: TaskModel, on data: SplitData, tasks: Int, batchSize: Int = 256, parallel: DataParallel? = nil) -> Evaluation {
        let split = parallel.flatMap { data.count >= $0.size ? $0 : nil }
        let rows = split?.evaluationRange(data.count) ?? 0..<data.count
        var e = Evaluation(correct: Array(repeating: 0, count: tasks), counts: Array(repeating: 0, count: tasks), loss: 0)
        var gateSums: [[Double]]? = nil
        // Every image's class (or label) probabilities, by record (rows padded to the widest
        // head): under MPI each rank fills its rows and a sum gives every rank all of them.
        let classes = model.heads.classes, kinds = model.heads.labelKinds, width = classes.max() ?? 1
        var probabilities = [Float](repeating: 0, count: data.count * width)
        var rng = RandomGenerator(seed: 0)
        var lo = rows.lowerBound
        while lo < rows.upperBound {
            let hi = min(rows.upperBound, lo + batchSize)
            let b = data.batch(ArraySlice(lo..<hi), training: false, rng: &rng)
            let logits = model.forward(b.images, layout: b.layout)
            for (gi, g) in b.layout.groups.enumerated() {
                let labels = b.labels[g.range], kind = kinds[g.task]
                e.correct[g.task] += TaskLoss.correct(kind, logits: logits[gi], labels: labels)
                e.counts[g.task] += g.range.count
                e.loss += Double(g.range.count) * TaskLoss.loss(kind, logits: logits[gi], labels: labels)
                probabilityRows(logits[gi], kind: kind, records: b.records[g.range], into: &probabilities, width: width)
            }
            if let gates = model.lastGates, gates.shape.count == 2, gates.shape[0] == b.layout.count {
                let k = gates.shape[1]
                if gateSums == nil { gateSums = Array(repeating: Array(repeating: 0, count: k), count: tasks) }
                for g in b.layout.groups { for i in g.range { for j in 0..<k { gateSums![g.task][j] += Double(gates.pointer[i * k + j]) } } }
            }
            lo = hi
        }
        if let split {
            let reduced = split.reduce(e, gateSums: gateSums)
            e = Evaluation(correct: reduced.correct, counts: reduced.counts, loss: reduced.loss)
            gateSums = reduced.gateSums
            probabilities.withUnsafeMutableBufferPointer { split.mpi.allReduceSum($0.baseAddress!, count: $0.count) }
        }
        e.metrics = (0..<tasks).map { t in
            let rows = data.tasks.indices.filter { data.tasks[$0] == Int32(t) }, c = t < classes.count ? classes[t] : width
            var p = [Float](repeating: 0, count: rows.count * c)
            for (i, r) in rows.enumerated() { for k in 0..<c { p[i * c + k] = probabilities[r * width + k] } }
            return p.withUnsafeBufferPointer {
                ClassificationMetrics(probabilities: $0, classes: c, labels: rows.map { data.labels[$0] }, kind: t < kinds.count ? kinds[t] : .single)
            }
        }
        if kinds.contains(.multi) { e.decisionsPerImage = (0..<tasks).map { t in t < kinds.count ? TaskLoss.decisionsPerRow(kinds[t], classes: classes[t]) : 1 } }
        e.loss /= Double(max(1, data.count))
        if let sums = gateSums { e.routerWeights = sums.enumerated().map { t, row in row.map { $0 / Double(max(1, e.counts[t])) } } }
        return e
    }
}

/// Writes each row's probabilities (softmax, or σ per label for a multi-label head) at its
/// record's row of `out` (`width` wide).
func probabilityRows(_ logits: Tensor, kind: LabelKind, records: ArraySlice<Int>, into out: inout [Float], width: Int) {
    let c = logits.shape[1]
    var p = [Float](repeating: 0, count: records.count * c)
    TaskLoss.probabilities(kind, rows: records.count, classes: c, logits: logits.pointer, into: &p)
    for (row, record) in records.enumerated() { for k in 0..<c { out[record * width + k] = p[row * c + k] } }
}
