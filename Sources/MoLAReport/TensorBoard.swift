import Foundation
import MoLASupport

/// `tb/events.out.tfevents.*` of a run, so `tensorboard --logdir runs` shows every run: the
/// scalars of metrics.jsonl (training loss, accuracy and learning rate every `log_every`
/// steps; validation loss, average and per-task accuracy; task-gradient cosine; each
/// adapter's growth ‖ΔW_k‖/‖W‖) as TensorFlow `Event` protobufs (hand-encoded: four message
/// fields) in TFRecord framing with masked CRC-32C.
///
/// Events are appended as records are written (one small write each); a resumed run, which
/// cuts metrics.jsonl back to its checkpoint, starts the file anew from what was kept, so
/// it always holds exactly what metrics.jsonl holds.
public enum TensorBoard {
    public static let fileName = "events.out.tfevents.0.mola-train"

    static func path(_ runDirectory: String) -> String { runDirectory + "/tb/" + fileName }

    /// Writes the file anew: the version event, then `records`' scalars.
    public static func start(_ runDirectory: String, records: [MetricsRecord] = []) throws {
        var out: [UInt8] = []
        record(event(wallTime: 0, step: 0, payload: string(3, "brain.Event:2")), into: &out)
        for r in records { out += events(r) }
        try FileManager.default.createDirectory(atPath: runDirectory + "/tb", withIntermediateDirectories: true)
        try FileIO.writeAtomically(out, to: path(runDirectory))
    }

    /// Appends one record's scalars (starting the file when there is none).
    public static func append(_ r: MetricsRecord, to runDirectory: String) throws {
        let file = path(runDirectory)
        if !FileIO.exists(file) { try start(runDirectory) }
        let bytes = events(r)
        guard !bytes.isEmpty else { return }
        try FileIO.append(bytes, to: file)
    }

    /// The framed summary event of one record (none when it has no scalars).
    static func events(_ r: MetricsRecord) -> [UInt8] {
        var values: [(String, Double)] = []
        let step: Int, time: Double
        switch r {
        case .training(let t):
            (step, time) = (t.step, 0)
            values = [("train/loss", t.loss), ("train/accuracy", t.accuracy), ("train/learning_rate", t.learningRate)]
        case .evaluation(let e):
            (step, time) = (e.step, e.seconds)
            values = [("val/loss", e.valLoss), ("val/average", e.valAverage)]
            for (task, v) in e.valPerTask.sorted(by: { $0.key < $1.key }) { values.append(("val/\(task)", v)) }
            if let v = e.valAucAverage { values.append(("val_auc/average", v)) }
            for (task, v) in (e.valAuc ?? [:]).sorted(by: { $0.key < $1.key }) { values.append(("val_auc/\(task)", v)) }
            for (task, v) in (e.valBalancedAccuracy ?? [:]).sorted(by: { $0.key < $1.key }) { values.append(("val_balanced_accuracy/\(task)", v)) }
            if let v = e.conflictCosine { values.append(("conflict/task_cosine", v)) }
            for (k, v) in (e.adapterGrowth ?? []).enumerated() { values.append(("adapters/growth_\(k)", v)) }
        }
        let summary = values.flatMap { message(1, string(1, $0.0) + float(2, Float($0.1))) }
        var out: [UInt8] = []
        record(event(wallTime: time, step: step, payload: message(5, summary)), into: &out)
        return out
    }

    // MARK: Protobuf (the few wire types used)

    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    static func key(_ field: Int, _ wire: Int) -> [UInt8] { varint(UInt64(field << 3 | wire)) }
    static func string(_ field: Int, _ s: String) -> [UInt8] { message(field, Array(s.utf8)) }
    static func message(_ field: Int, _ bytes: [UInt8]) -> [UInt8] { key(field, 2) + varint(UInt64(bytes.count)) + bytes }
    static func float(_ field: Int, _ v: Float) -> [UInt8] { key(field, 5) + withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }

    /// Event: wall_time (1, double), step (2, int64), then the payload field (file_version or summary).
    static func event(wallTime: Double, step: Int, payload: [UInt8]) -> [UInt8] {
        key(1, 1) + withUnsafeBytes(of: wallTime.bitPattern.littleEndian, Array.init) + key(2, 0) + varint(UInt64(step)) + payload
    }

    // MARK: TFRecord framing

    static func record(_ data: [UInt8], into out: inout [UInt8]) {
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
        out += length + withUnsafeBytes(of: masked(crc32c(length)).littleEndian, Array.init)
        out += data + withUnsafeBytes(of: masked(crc32c(data)).littleEndian, Array.init)
    }

    static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// CRC-32C (Castagnoli), as TFRecord checksums use.
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
