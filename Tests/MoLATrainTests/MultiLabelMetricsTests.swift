import Foundation
import MoLAReport
import MoLASupport
import MoLATensor
import Testing

/// Multi-label heads against their peers: the binary cross-entropy of a sigmoid per label
/// against scikit-learn's `log_loss` per label (the mean over labels of equal-sized columns
/// is the mean over all values, PyTorch's `BCEWithLogitsLoss`), its gradient against central
/// differences, and ACC, AUC, balanced accuracy, recall and the per-label confusion matrices
/// as MedMNIST's evaluator and scikit-learn compute them (ACC: the mean over labels of the
/// accuracy at threshold ½; AUC: the mean over labels of `roc_auc_score`; each label's
/// `confusion_matrix`, which `multilabel_confusion_matrix` stacks).
@Suite struct MultiLabelMetricsTests {
    struct Case: Codable {
        var labels: Int
        var rows: [[Int]]  // 0/1 per label
        var logits: [Float]
        var probabilities: [Float]  // ours, float32 σ of the logits
    }

    struct Peer: Decodable {
        var loss: Double, acc: Double, auc: Double, balanced: Double
        var recall: [Double]
        var confusion: [[Int]]
    }

    /// Logits rounded to quarters, so that many scores tie; label k present with
    /// probability `prevalence[k]`, its logit shifted up when present.
    static func makeCase(labels l: Int, rows n: Int, seed: UInt64) -> Case {
        var g = RandomGenerator(seed: seed)
        let prevalence = (0..<l).map { 0.05 + 0.6 * Double($0) / Double(max(1, l - 1)) }
        var rows: [[Int]] = [], logits: [Float] = []
        for r in 0..<n {
            // The first two rows make every label both present and absent somewhere.
            let row = (0..<l).map { k in r == 0 ? 1 : r == 1 ? 0 : (Double(g.uniform(0, 1)) < prevalence[k] ? 1 : 0) }
            rows.append(row)
            logits += row.map { y in ((Float(g.uniform(-3, 3)) + (y == 1 ? 1.2 : 0)) * 4).rounded() / 4 }
        }
        var p = [Float](repeating: 0, count: logits.count)
        logits.withUnsafeBufferPointer { SigmoidCrossEntropy.probabilities(count: $0.count, logits: $0.baseAddress!, into: &p) }
        return Case(labels: l, rows: rows, logits: logits, probabilities: p)
    }

    static let script = """
        import json, sys
        import numpy as np
        from sklearn.metrics import (log_loss, accuracy_score, roc_auc_score, balanced_accuracy_score,
                                     recall_score, confusion_matrix)
        out = []
        for c in json.load(open(sys.argv[1])):
            L = c["labels"]; y = np.array(c["rows"])
            x = np.array(c["logits"], dtype=np.float64).reshape(-1, L)
            p = np.array(c["probabilities"], dtype=np.float64).reshape(-1, L)
            pred = (p > 0.5).astype(int)
            sig = 1 / (1 + np.exp(-x))
            out.append({
                "loss": float(np.mean([log_loss(y[:, k], sig[:, k], labels=[0, 1]) for k in range(L)])),
                "acc": 100 * float(np.mean([accuracy_score(y[:, k], pred[:, k]) for k in range(L)])),
                "auc": float(np.mean([roc_auc_score(y[:, k], p[:, k]) for k in range(L)])),
                "balanced": 100 * float(np.mean([balanced_accuracy_score(y[:, k], pred[:, k]) for k in range(L)])),
                "recall": [100 * recall_score(y[:, k], pred[:, k], zero_division=0) for k in range(L)],
                "confusion": [confusion_matrix(y[:, k], pred[:, k], labels=[0, 1]).ravel().tolist() for k in range(L)]})
        print(json.dumps(out))
        """

    @Test func agreesWithScikitLearn() throws {
        let cases = [Self.makeCase(labels: 14, rows: 400, seed: 1), Self.makeCase(labels: 3, rows: 60, seed: 2),
                     Self.makeCase(labels: 1, rows: 50, seed: 3)]
        let peers = try askPython(Self.script, cases: cases, as: [Peer].self)
        for (c, want) in zip(cases, peers) {
            let n = c.rows.count, sets = c.rows.map { LabelKind.bitSet($0) }
            let name = "\(c.labels) labels, \(n) rows"
            let loss = c.logits.withUnsafeBufferPointer { x in
                sets.withUnsafeBufferPointer { SigmoidCrossEntropy.loss(rows: n, labels: c.labels, logits: x.baseAddress!, sets: $0.baseAddress!) }
            }
            #expect(abs(loss - want.loss) < 1e-6 * want.loss, "\(name): loss \(loss) vs log_loss \(want.loss)")
            let logits = Tensor(shape: [n, c.labels], scalars: c.logits)
            let acc = 100 * Double(TaskLoss.correct(.multi, logits: logits, labels: sets[...])) / Double(n * c.labels)
            #expect(abs(acc - want.acc) < 1e-9, "\(name): ACC \(acc) vs \(want.acc)")
            let m = c.probabilities.withUnsafeBufferPointer { ClassificationMetrics(probabilities: $0, classes: c.labels, labels: sets, kind: .multi) }
            #expect(abs((m.auc ?? -1) - want.auc) < 1e-12, "\(name): AUC \(m.auc ?? -1) vs \(want.auc)")
            #expect(abs(m.balancedAccuracy - want.balanced) < 1e-9, "\(name): balanced accuracy \(m.balancedAccuracy) vs \(want.balanced)")
            #expect(m.labelConfusion == want.confusion, "\(name): per-label confusion")
            #expect(zip(m.recall, want.recall).allSatisfy { abs(($0 ?? 0) - $1) < 1e-9 }, "\(name): recall \(m.recall) vs \(want.recall)")
        }
    }

    /// The gradient of the loss (with a weight) against central differences in float64.
    @Test func gradientMatchesDifferences() {
        let c = Self.makeCase(labels: 5, rows: 7, seed: 9)
        let sets = c.rows.map { LabelKind.bitSet($0) }
        var d = [Float](repeating: 0, count: c.logits.count)
        _ = SigmoidCrossEntropy.loss(rows: 7, labels: 5, logits: c.logits, sets: sets, weight: 0.7, dLogits: &d)
        for i in c.logits.indices {
            var plus = c.logits, minus = c.logits
            plus[i] += 1e-2; minus[i] -= 1e-2
            let numeric = (SigmoidCrossEntropy.loss(rows: 7, labels: 5, logits: plus, sets: sets, weight: 0.7)
                - SigmoidCrossEntropy.loss(rows: 7, labels: 5, logits: minus, sets: sets, weight: 0.7)) / 2e-2
            #expect(abs(Double(d[i]) - numeric) < 1e-4, "logit \(i): \(d[i]) vs \(numeric)")
        }
    }

    /// Hand case: two images, two labels.
    @Test func handCase() {
        // Image 0 has label 0 (predicted 0.9) not 1 (0.6: a false positive); image 1 has
        // label 1 (0.4: missed) not 0 (0.2).
        let p: [Float] = [0.9, 0.6, 0.2, 0.4]
        let m = p.withUnsafeBufferPointer { ClassificationMetrics(probabilities: $0, classes: 2, labels: [0b01, 0b10], kind: .multi) }
        #expect(m.labelConfusion == [[1, 0, 0, 1], [0, 1, 1, 0]])
        #expect(m.recall == [100, 0] && m.auc == 0.5 && m.balancedAccuracy == 50)
    }
}
