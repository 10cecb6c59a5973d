import Foundation
import MoLASupport

/// Binary cross-entropy of a sigmoid per label, for multi-label heads: the mean over the
/// rows and labels of −[y·log σ(x) + (1−y)·log(1−σ(x))], as PyTorch's
/// `BCEWithLogitsLoss` (mean reduction) defines it. Labels are bit sets (`LabelKind`).
public enum SigmoidCrossEntropy {
    /// The loss over `rows` × `labels` logits, times `weight`; `dLogits` (when given)
    /// receives its gradient, overwritten.
    @discardableResult
    public static func loss(rows: Int, labels c: Int, logits: UnsafePointer<Float>, sets: UnsafePointer<Int32>, weight: Float = 1,
                            dLogits: UnsafeMutablePointer<Float>? = nil) -> Double {
        guard rows > 0, c > 0 else { dLogits?.update(repeating: 0, count: rows * c); return 0 }
        let scale = weight / Float(rows * c)
        var total = 0.0
        for r in 0..<rows {
            let set = sets[r]
            for k in 0..<c {
                let x = Double(logits[r * c + k]), y = LabelKind.has(set, k) ? 1.0 : 0.0
                // log(1 + e^−|x|) + max(x, 0) − x·y: stable for large |x|.
                total += log1p(exp(-abs(x))) + max(x, 0) - x * y
                if let d = dLogits { d[r * c + k] = Float(sigmoid(x) - y) * scale }
            }
        }
        return total / Double(rows * c) * Double(weight)
    }

    @inline(__always) static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

    /// σ(x) per value.
    public static func probabilities(count: Int, logits: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>) {
        for i in 0..<count { p[i] = Float(sigmoid(Double(logits[i]))) }
    }
}

/// A task's loss, probabilities and correct decisions, by its label kind: softmax with
/// cross-entropy for `single`, a sigmoid per label with binary cross-entropy for `multi`.
public enum TaskLoss {
    /// The mean loss of `rows` rows (× `weight`), its gradient into `dLogits` when given.
    @discardableResult
    public static func loss(_ kind: LabelKind, rows: Int, classes c: Int, logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                            weight: Float = 1, dLogits: UnsafeMutablePointer<Float>? = nil) -> Double {
        switch kind {
        case .single: CrossEntropy.loss(rows: rows, classes: c, logits: logits, labels: labels, weight: weight, dLogits: dLogits)
        case .multi: SigmoidCrossEntropy.loss(rows: rows, labels: c, logits: logits, sets: labels, weight: weight, dLogits: dLogits)
        }
    }

    public static func loss(_ kind: LabelKind, logits: Tensor, labels: ArraySlice<Int32>) -> Double {
        labels.withUnsafeBufferPointer { loss(kind, rows: $0.count, classes: logits.shape[1], logits: logits.pointer, labels: $0.baseAddress!) }
    }

    /// Class probabilities (softmax of each row) or label probabilities (σ of each value).
    public static func probabilities(_ kind: LabelKind, rows: Int, classes c: Int, logits: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>) {
        switch kind {
        case .single: Softmax.forward(rows: rows, classes: c, x: logits, y: p)
        case .multi: SigmoidCrossEntropy.probabilities(count: rows * c, logits: logits, into: p)
        }
    }

    /// Correct decisions: rows whose largest logit is the class (`single`, one per row), or
    /// labels whose probability is above ½ exactly when present (`multi`, `classes` per row,
    /// MedMNIST's threshold) — so accuracy is correct / (rows · decisionsPerRow).
    public static func correct(_ kind: LabelKind, logits: Tensor, labels: ArraySlice<Int32>) -> Int {
        let c = logits.shape[1], l = logits.pointer
        var correct = 0
        for (row, label) in labels.enumerated() {
            switch kind {
            case .single:
                var best = 0
                for k in 1..<c where l[row * c + k] > l[row * c + best] { best = k }
                if best == Int(label) { correct += 1 }
            case .multi:
                for k in 0..<c where (Float(SigmoidCrossEntropy.sigmoid(Double(l[row * c + k]))) > 0.5) == LabelKind.has(label, k) { correct += 1 }
            }
        }
        return correct
    }

    /// How many decisions a row makes: 1, or one per label.
    public static func decisionsPerRow(_ kind: LabelKind, classes: Int) -> Int { kind == .multi ? classes : 1 }
}
