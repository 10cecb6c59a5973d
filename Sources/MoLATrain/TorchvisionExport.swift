import Foundation
import MoLAData
import MoLAModel
import MoLASupport
import MoLATensor

/// `mola-train export RUN --torchvision DIR`: a run's best checkpoint as torchvision state
/// dicts (safetensors: torchvision names, conv weights O×I×kh×kw, fc as out×in) that load
/// into a plain torchvision ResNet with no MoLA code. One file per task — that task's
/// adapters folded into the convolutions (W + ΔW_t), its batch-norm statistics when they
/// are per task, its head as `fc` — and, when the backbone is the same for every task
/// (uniform, shared batch norm), `backbone.safetensors` without a classifier.
public enum TorchvisionExport {
    /// torchvision's name for one of our backbone parameters (inverse of
    /// `PretrainedWeights.ourName`); nil for parameters that are not the backbone's.
    public static func torchName(_ ours: String) -> String? {
        // ShuffleNet V2's parameters carry torchvision's names already.
        if ours.hasPrefix("conv1.") || ours.hasPrefix("conv5.") || ours.range(of: #"^stage\d+\.\d+\.branch"#, options: .regularExpression) != nil {
            return ours
        }
        if ours.hasPrefix("stem.conv.") { return "conv1." + ours.dropFirst("stem.conv.".count) }
        if ours.hasPrefix("stem.bn.") { return "bn1." + ours.dropFirst("stem.bn.".count) }
        let parts = ours.split(separator: ".").map(String.init)
        guard parts.count >= 4, parts[0].hasPrefix("stage"), let stage = Int(parts[0].dropFirst(5)),
              parts[1].hasPrefix("block"), let block = Int(parts[1].dropFirst(5)) else { return nil }
        let head = "layer\(stage).\(block - 1)."
        if parts[2] == "shortcut", parts.count == 5 { return head + (parts[3] == "conv" ? "downsample.0." : "downsample.1.") + parts[4] }
        return head + parts[2...].joined(separator: ".")
    }

    /// The state dict of task `task` (nil: the backbone alone, which must not differ by task).
    public static func stateDict(_ model: any TaskModel, task: Int?) -> [SafeTensors.Tensor] {
        let store = model.store
        let convs = Dictionary(uniqueKeysWithValues: model.convolutions.map { ($0.conv.weight.offset, $0.conv) })
        var out: [SafeTensors.Tensor] = []
        let head = task.map { (weight: model.heads.weights[$0].offset, bias: model.heads.biases[$0].offset) }
        for e in store.entries where e.role != .adapter {
            if e.role == .head {  // the task's own head becomes fc; the other tasks' are left out
                let values = Array(UnsafeBufferPointer(start: store.values + e.offset, count: e.count))
                if e.offset == head?.weight {
                    let (features, classes) = (e.shape[0], e.shape[1])
                    out.append(.init(name: "fc.weight", shape: [classes, features], values: (0..<(classes * features)).map { values[($0 % features) * classes + $0 / features] }))
                } else if e.offset == head?.bias {
                    out.append(.init(name: "fc.bias", shape: e.shape, values: values))
                }
                continue
            }
            // Per-task statistics (`x.task2.running_mean`): this task's, under the plain name.
            var name = e.name
            let parts = name.split(separator: ".").map(String.init)
            if parts.count >= 2, let t = parts[parts.count - 2].hasPrefix("task") ? Int(parts[parts.count - 2].dropFirst(4)) : nil {
                guard t == task else { continue }
                name = (parts.dropLast(2) + [parts.last!]).joined(separator: ".")
            }
            guard let torch = torchName(name) else { continue }
            var values = Array(UnsafeBufferPointer(start: store.values + e.offset, count: e.count))
            var shape = e.shape
            if e.shape.count == 4 {
                if let conv = convs[e.offset], conv.adapters != nil, let task { values = conv.effectiveWeight(task) }
                let (kh, kw, cin, cout) = (e.shape[0], e.shape[1], e.shape[2], e.shape[3])
                var t = [Float](repeating: 0, count: values.count)
                for o in 0..<cout { for c in 0..<cin { for i in 0..<kh { for j in 0..<kw {
                    t[((o * cin + c) * kh + i) * kw + j] = values[((i * kw + j) * cin + c) * cout + o]
                } } } }
                values = t
                shape = [cout, cin, kh, kw]
            } else if e.shape.count == 3 {  // depthwise k×k×C → C×1×k×k
                let (kh, kw, c) = (e.shape[0], e.shape[1], e.shape[2])
                var t = [Float](repeating: 0, count: values.count)
                for ch in 0..<c { for i in 0..<kh { for j in 0..<kw { t[(ch * kh + i) * kw + j] = values[(i * kw + j) * c + ch] } } }
                values = t
                shape = [c, 1, kh, kw]
            }
            out.append(.init(name: torch, shape: shape, values: values))
        }
        return out
    }

    /// Writes the files for the run in `runDirectory` (its best checkpoint) into `out`.
    public static func export(run runDirectory: String, to out: String) throws -> [String] {
        let d = try RunDescription.read(runDirectory)
        guard case .torchvision(let sharedBackbone) = d.config.method.export else {
            let exportable = Method.all.filter { $0.export != nil }.map(\.name)
            throw DataError(file: runDirectory + "/run.json", "\(d.config.method) runs cannot be exported as plain torchvision models",
                            fix: "export \(spoken(exportable)) runs (a router mixing adapters per image, several backbones or per-task modules have no plain torchvision form; single-task: export each run under tasks/)")
        }
        let model = d.makeModel()
        _ = try Checkpoint.load(from: runDirectory + "/checkpoints/best", into: model.store, configHash: d.config.hash)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var written: [String] = []
        func write(_ tensors: [SafeTensors.Tensor], _ file: String, _ what: String) throws {
            let meta = ["format": "pt", "source": runDirectory, "content": what, "tool": "mola-train \(MoLAVersion.string)"]
            try FileIO.writeAtomically(SafeTensors.encode(tensors, metadata: meta), to: out + "/" + file)
            written.append(out + "/" + file)
        }
        if sharedBackbone && d.config.batchNorm == nil { try write(stateDict(model, task: nil), "backbone.safetensors", "backbone") }
        for (t, name) in d.tasks.enumerated() { try write(stateDict(model, task: t), "\(name).safetensors", "task \(name): backbone and fc") }
        return written
    }
}
