import Foundation
import MoLAData
import MoLASupport

/// `tb/events.out.tfevents.*` of a run, so `tensorboard --logdir runs` shows every run: the
/// scalars of metrics.jsonl (training loss, accuracy and learning rate every `log_every`
/// steps; validation loss, average and per-task accuracy; each adapter's growth ‖ΔW_k‖/‖W‖) as TensorFlow `Event` protobufs
/// (hand-encoded: four message fields) in TFRecord framing with masked CRC-32C.
///
/// The file is rewritten whole from metrics.jsonl (temporary file, then rename) at every
/// evaluation and at the end, so it holds exactly what metrics.jsonl holds — also after a
/// resume, which cuts metrics.jsonl back to its checkpoint.
enum TensorBoard {
    static let fileName = "events.out.tfevents.0.mola-train"

    static func write(metrics: [[String: Any]], to runDirectory: String) throws {
        var out: [UInt8] = []
        record(event(wallTime: 0, step: 0, payload: string(3, "brain.Event:2")), into: &out)
        for m in metrics {
            guard let step = m["step"] as? Int else { continue }
            let time = m["seconds"] as? Double ?? 0
            var values: [(String, Double)] = []
            if m["kind"] as? String == "train" {
                for (key, tag) in [("loss", "train/loss"), ("accuracy", "train/accuracy"), ("learning_rate", "train/learning_rate")] {
                    if let v = m[key] as? Double { values.append((tag, v)) }
                }
            } else {
                if let v = m["val_loss"] as? Double { values.append(("val/loss", v)) }
                if let v = m["val_average"] as? Double { values.append(("val/average", v)) }
                if let per = m["val_per_task"] as? [String: Double] {
                    for (task, v) in per.sorted(by: { $0.key < $1.key }) { values.append(("val/\(task)", v)) }
                }
                if let v = m["conflict_cosine"] as? Double { values.append(("conflict/task_cosine", v)) }
                if let growth = m["adapter_growth"] as? [Double] {
                    for (k, v) in growth.enumerated() { values.append(("adapters/growth_\(k)", v)) }
                }
            }
            guard !values.isEmpty else { continue }
            let summary = values.flatMap { message(1, string(1, $0.0) + float(2, Float($0.1))) }
            record(event(wallTime: time, step: step, payload: message(5, summary)), into: &out)
        }
        let dir = runDirectory + "/tb"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileIO.writeAtomically(out, to: dir + "/" + fileName)
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
