import Foundation
import MoLAReport
import MoLASupport
import Testing

/// AUC, balanced accuracy, recall and confusion matrices against scikit-learn on the same
/// probabilities: binary and multi-class, with many tied scores, an absent predicted class
/// and imbalanced classes. The AUC follows MedMNIST's evaluator (the second class's score
/// for two classes; the mean of each class against the rest for more), computed in Python
/// with `roc_auc_score`.
@Suite struct ClassificationMetricsTests {
    struct Case: Codable {
        var classes: Int
        var labels: [Int32]
        var probabilities: [Float]  // rows × classes
    }

    struct SKLearn: Decodable {
        var auc: Double
        var balanced: Double
        var recall: [Double]
        var confusion: [[Int]]
    }

    /// Random probabilities rounded to `step`, so that many scores tie.
    static func makeCase(classes: Int, rows: Int, step: Float, seed: UInt64, weights: [Int]? = nil, never: Int? = nil) -> Case {
        var g = RandomGenerator(seed: seed)
        let bag = weights.map { w in w.enumerated().flatMap { Array(repeating: Int32($0.offset), count: $0.element) } } ?? (0..<classes).map(Int32.init)
        var labels: [Int32] = [], p: [Float] = []
        for _ in 0..<rows {
            let label = bag[g.nextInt(below: bag.count)]
            labels.append(label)
            var row = (0..<classes).map { k in Float(g.nextInt(below: 100)) / 100 + (k == Int(label) ? 0.4 : 0) }
            if let never { row[never] = 0 }
            let sum = row.reduce(0, +)
            row = row.map { (($0 / sum) / step).rounded() * step }
            p += row
        }
        return Case(classes: classes, labels: labels, probabilities: p)
    }

    static let script = """
        import json, sys
        import numpy as np
        from sklearn.metrics import roc_auc_score, balanced_accuracy_score, recall_score, confusion_matrix
        out = []
        for c in json.load(open(sys.argv[1])):
            k = c["classes"]; y = np.array(c["labels"]); p = np.array(c["probabilities"], dtype=np.float64).reshape(-1, k)
            if k == 2:
                auc = roc_auc_score(y, p[:, -1])
            else:
                auc = sum(roc_auc_score((y == i).astype(float), p[:, i]) for i in range(k)) / k
            pred = p.argmax(axis=1)
            out.append({"auc": auc, "balanced": 100 * balanced_accuracy_score(y, pred),
                        "recall": [100 * r for r in recall_score(y, pred, labels=list(range(k)), average=None, zero_division=0)],
                        "confusion": confusion_matrix(y, pred, labels=list(range(k))).tolist()})
        print(json.dumps(out))
        """

    @Test func agreesWithScikitLearn() throws {
        let cases = [
            Self.makeCase(classes: 2, rows: 200, step: 0.05, seed: 1),
            Self.makeCase(classes: 2, rows: 150, step: 0.25, seed: 2, weights: [9, 1]),  // coarse: most scores tie
            Self.makeCase(classes: 5, rows: 300, step: 0.1, seed: 3),
            Self.makeCase(classes: 4, rows: 120, step: 0.05, seed: 4, weights: [5, 3, 1, 1], never: 3),  // class 3 never predicted
            Self.makeCase(classes: 11, rows: 500, step: 0.01, seed: 5),
        ]
        let expected = try askPython(Self.script, cases: cases, as: [SKLearn].self)
        for (c, want) in zip(cases, expected) {
            let m = c.probabilities.withUnsafeBufferPointer { ClassificationMetrics(probabilities: $0, classes: c.classes, labels: c.labels) }
            let name = "\(c.classes) classes, \(c.labels.count) rows"
            #expect(abs((m.auc ?? -1) - want.auc) < 1e-12, "\(name): AUC \(m.auc ?? -1) vs \(want.auc)")
            #expect(abs(m.balancedAccuracy - want.balanced) < 1e-9, "\(name): balanced accuracy \(m.balancedAccuracy) vs \(want.balanced)")
            #expect(m.confusion == want.confusion, "\(name): confusion")
            #expect(zip(m.recall, want.recall).allSatisfy { abs(($0 ?? 0) - $1) < 1e-9 }, "\(name): recall \(m.recall) vs \(want.recall)")
        }
    }

    /// Hand cases: a perfect ranking, a reversed one, all scores tied, and a class with no
    /// image (AUC undefined, as roc_auc_score refuses it; its recall absent from the mean).
    @Test func handCases() {
        #expect(ClassificationMetrics.rocAUC([0.1, 0.2, 0.8, 0.9], positive: [false, false, true, true]) == 1)
        #expect(ClassificationMetrics.rocAUC([0.9, 0.8, 0.2, 0.1], positive: [false, false, true, true]) == 0)
        #expect(ClassificationMetrics.rocAUC([0.5, 0.5, 0.5], positive: [true, false, false]) == 0.5)
        #expect(ClassificationMetrics.rocAUC([0.3, 0.4], positive: [true, true]) == nil)
        let p: [Float] = [0.7, 0.2, 0.1, 0.2, 0.7, 0.1, 0.6, 0.3, 0.1]  // three images, class 2 has none
        let m = p.withUnsafeBufferPointer { ClassificationMetrics(probabilities: $0, classes: 3, labels: [0, 1, 1]) }
        #expect(m.auc == nil && m.recall[2] == nil && m.recall[0] == 100 && m.recall[1] == 50 && m.balancedAccuracy == 75)
        #expect(m.confusion == [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    }
}
