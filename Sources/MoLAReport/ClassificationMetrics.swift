import Foundation
import MoLASupport

/// The metrics medical readers look for beside accuracy, for one task: ROC AUC as
/// MedMNIST's evaluator defines it (two classes: the AUC of the second class's score;
/// more: the mean over classes of each class-against-the-rest AUC), balanced accuracy and
/// per-class recall as scikit-learn's `balanced_accuracy_score` and `recall_score` give
/// them, and the confusion matrix. Computed from the softmax probabilities of every image
/// of a split.
///
/// A multi-label task (sigmoid probabilities per label; labels as bit sets) is measured
/// per label as MedMNIST does for ChestMNIST: the AUC is the mean over labels of each
/// label's AUC, a label is predicted present when its probability is above ½, the recall
/// is each label's sensitivity, the balanced accuracy the mean over labels of each label's
/// (sensitivity + specificity) / 2 (scikit-learn's `balanced_accuracy_score` per column),
/// and each label has a 2×2 confusion matrix (`labelConfusion`).
public struct ClassificationMetrics: Codable, Equatable, Sendable {
    /// ROC AUC in [0, 1]; nil when it is undefined (a class with no image, or only one class).
    public var auc: Double?
    /// The mean over the classes present of their recall, in %.
    public var balancedAccuracy: Double
    /// Each class's recall in %; nil for a class with no image in the split.
    public var recall: [Double?]
    /// Images by true class (rows) and predicted class (columns); empty for a multi-label task.
    public var confusion: [[Int]]
    /// A multi-label task's per-label counts [tn, fp, fn, tp] (scikit-learn's
    /// `multilabel_confusion_matrix` flattened); nil for a single-label task.
    public var labelConfusion: [[Int]]?
    public var isMultiLabel: Bool { labelConfusion != nil }

    /// The metrics of `rows` images: `probabilities` row-major (`rows` × `classes`), the
    /// images' true classes (or label bit sets) in `labels`.
    public init(probabilities: UnsafeBufferPointer<Float>, classes: Int, labels: [Int32], kind: LabelKind = .single) {
        precondition(probabilities.count == labels.count * classes)
        if kind == .multi { self.init(multiLabel: probabilities, labels: classes, sets: labels) } else {
            self.init(singleLabel: probabilities, classes: classes, labels: labels)
        }
    }

    private init(singleLabel probabilities: UnsafeBufferPointer<Float>, classes: Int, labels: [Int32]) {
        labelConfusion = nil
        var confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        for (i, label) in labels.enumerated() {
            var best = 0
            for k in 1..<classes where probabilities[i * classes + k] > probabilities[i * classes + best] { best = k }
            confusion[Int(label)][best] += 1
        }
        self.confusion = confusion
        recall = confusion.enumerated().map { c, row in
            let support = row.reduce(0, +)
            return support > 0 ? 100 * Double(row[c]) / Double(support) : nil
        }
        let present = recall.compactMap { $0 }
        balancedAccuracy = present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
        func column(_ k: Int) -> [Double] { labels.indices.map { Double(probabilities[$0 * classes + k]) } }
        if classes == 2 {
            auc = Self.rocAUC(column(1), positive: labels.map { $0 == 1 })
        } else {
            auc = Self.meanIfDefined((0..<classes).map { k in Self.rocAUC(column(k), positive: labels.map { $0 == Int32(k) }) })
        }
    }

    private init(multiLabel p: UnsafeBufferPointer<Float>, labels c: Int, sets: [Int32]) {
        var counts = [[Int]](repeating: [0, 0, 0, 0], count: c)
        for (i, set) in sets.enumerated() {
            for k in 0..<c { counts[k][(LabelKind.has(set, k) ? 2 : 0) + (p[i * c + k] > 0.5 ? 1 : 0)] += 1 }
        }
        confusion = []
        labelConfusion = counts
        recall = counts.map { $0[2] + $0[3] > 0 ? 100 * Double($0[3]) / Double($0[2] + $0[3]) : nil }
        let perLabel = counts.map { n -> Double in
            let rates = [(n[0], n[0] + n[1]), (n[3], n[2] + n[3])].filter { $0.1 > 0 }.map { Double($0.0) / Double($0.1) }
            return rates.isEmpty ? 0 : 100 * rates.reduce(0, +) / Double(rates.count)
        }
        balancedAccuracy = perLabel.isEmpty ? 0 : perLabel.reduce(0, +) / Double(perLabel.count)
        auc = Self.meanIfDefined((0..<c).map { k in
            Self.rocAUC(sets.indices.map { Double(p[$0 * c + k]) }, positive: sets.map { LabelKind.has($0, k) })
        })
    }

    /// The mean of AUCs (of classes, tasks), or nil when any is undefined or there are none.
    public static func meanIfDefined(_ values: [Double?]) -> Double? {
        guard !values.isEmpty, !values.contains(where: { $0 == nil }) else { return nil }
        return values.compactMap { $0 }.reduce(0, +) / Double(values.count)
    }

    /// The area under the ROC curve of `scores` for telling the `positive` rows from the
    /// others: the Mann–Whitney statistic over average ranks, so tied scores count one half,
    /// which is the trapezoidal area scikit-learn's `roc_auc_score` computes. nil without
    /// both a positive and a negative row.
    public static func rocAUC(_ scores: [Double], positive: [Bool]) -> Double? {
        let n = scores.count
        let positives = positive.filter { $0 }.count, negatives = n - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0, i = 0
        while i < n {
            var j = i
            while j + 1 < n && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1  // the average of ranks i+1 … j+1
            for k in i...j where positive[order[k]] { rankSum += rank }
            i = j + 1
        }
        let u = rankSum - Double(positives) * Double(positives + 1) / 2
        return u / (Double(positives) * Double(negatives))
    }
}
