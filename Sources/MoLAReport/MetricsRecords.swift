import Foundation
import MoLASupport

/// A training window's record in metrics.jsonl: the mean loss and accuracy of the last
/// `log_every` steps.
public struct TrainingRecord: Codable, Equatable, Sendable {
    public var kind = "train"
    public var step: Int
    public var epoch: Int
    public var loss: Double
    /// Top-1 accuracy in % over the window's images.
    public var accuracy: Double
    public var learningRate: Double

    public init(step: Int, epoch: Int, loss: Double, accuracy: Double, learningRate: Double) {
        self.step = step; self.epoch = epoch; self.loss = loss; self.accuracy = accuracy; self.learningRate = learningRate
    }
}

/// An evaluation's record in metrics.jsonl: the training since the last evaluation, the
/// validation split, and the diagnostics the method has.
public struct EvaluationRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    /// Mean training loss and accuracy (%) since the last evaluation.
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var learningRate: Double
    /// Validation loss per image, average accuracy (%) and accuracy per task.
    public var valLoss: Double
    public var valAverage: Double
    public var valPerTask: [String: Double]
    /// Validation ROC AUC per task (MedMNIST's definition; absent where undefined), their
    /// mean, and balanced accuracy per task (%). (`Auc`, not `AUC`: the snake-case keys of
    /// metrics.jsonl must decode back to the same names.)
    public var valAuc: [String: Double]?
    public var valAucAverage: Double?
    public var valBalancedAccuracy: [String: Double]?
    /// Training seconds so far.
    public var seconds: Double
    /// task × K mean router or gate weights on validation.
    public var routerWeights: [[Double]]?
    /// Cross-Stitch: each unit's T×T mixing.
    public var stitch: [[Double]]?
    /// A loss weighting's current weights per task (FAMO).
    public var taskWeights: [String: Double]?
    /// Per shared stage ("all": the whole shared part) on a fixed probe batch.
    public var conflict: [String: TaskConflict]?
    /// The mean pairwise cosine of the tasks' shared gradients ("all").
    public var conflictCosine: Double?
    /// Data-parallel runs: the rank count and the weights' fingerprint every rank agreed on.
    public var ranks: Int?
    public var weightsFingerprint: String?
    /// ‖ΔW_t‖/‖W‖ per adapter over the adapted layers, and per layer.
    public var adapterGrowth: [Double]?
    public var adapterGrowthPerLayer: [String: [Double]]?

    public init(step: Int, epoch: Int, trainLoss: Double, trainAccuracy: Double, learningRate: Double, valLoss: Double, valAverage: Double,
                valPerTask: [String: Double], seconds: Double) {
        self.step = step; self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.learningRate = learningRate; self.valLoss = valLoss; self.valAverage = valAverage; self.valPerTask = valPerTask
        self.seconds = seconds
    }

}

/// One line of a run's `metrics.jsonl`.
public enum MetricsRecord: Equatable, Sendable {
    case training(TrainingRecord)
    case evaluation(EvaluationRecord)

    public var step: Int {
        switch self {
        case .training(let r): r.step
        case .evaluation(let r): r.step
        }
    }

    public var evaluation: EvaluationRecord? { if case .evaluation(let r) = self { r } else { nil } }
    public var training: TrainingRecord? { if case .training(let r) = self { r } else { nil } }
}

/// A run's `metrics.jsonl`: one JSON object per line, appended as training goes; a resumed
/// run first cuts it back to its checkpoint's step, so no record is ever doubled.
public struct MetricsLog: Sendable {
    public let path: String

    public init(directory: String) { path = directory + "/metrics.jsonl" }

    /// Keys in snake case (`val_per_task`); dictionary keys (task and layer names) as they are.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    public static func line(_ record: MetricsRecord) throws -> Data {
        switch record {
        case .training(let r): try encoder.encode(r)
        case .evaluation(let r): try encoder.encode(r)
        }
    }

    /// Every record of the file, in order (unreadable lines — a crash mid-write — skipped).
    public func read() -> [MetricsRecord] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        let d = Self.decoder
        return text.split(separator: "\n").compactMap { line in
            let data = Data(line.utf8)
            if let t = try? d.decode(TrainingRecord.self, from: data), t.kind == "train" { return .training(t) }
            return (try? d.decode(EvaluationRecord.self, from: data)).map(MetricsRecord.evaluation)
        }
    }

    public func append(_ record: MetricsRecord) throws {
        try FileIO.append([UInt8](try Self.line(record) + Data("\n".utf8)), to: path)
    }

    /// Keeps the records up to `step` (those after it belong to the lost part of a run).
    public func truncate(after step: Int) throws -> [MetricsRecord] {
        let kept = read().filter { $0.step <= step }
        try FileIO.writeAtomically(try kept.map { String(decoding: try Self.line($0), as: UTF8.self) + "\n" }.joined(), to: path)
        return kept
    }
}
