import Foundation
import MoLAData
import MoLASupport
import MoLATensor

/// Where training stands: with the model and optimiser tensors, enough to continue exactly.
/// The data order and augmentation draw from (seed, epoch) and (seed, step), so those two
/// numbers are the whole random state.
public struct TrainState: Codable, Equatable, Sendable {
    public var step = 0
    public var epoch = 0
    /// Records of `epoch` already trained on.
    public var position = 0
    public var bestValidation = -1.0
    /// Validation loss at the best step (absent in checkpoints written before it was kept).
    public var bestValidationLoss: Double?
    /// Mean validation AUC at the best step (kept since AUC was measured).
    public var bestValidationAUC: Double?
    public var bestStep = -1
    public var trainSeconds = 0.0
    /// Time spent in train steps alone (no validation, no checkpoints): for images/s.
    public var stepSeconds = 0.0
    public var configHash = ""
    public var seed: UInt64 = 0
    public var finished = false
    public var running = Running()
    /// The training-log window (`log_every`) since its last record; absent in checkpoints
    /// written before training records existed.
    public var logWindow: Running?
    /// Sums over a window of steps: loss, correct predictions, images, steps.
    public struct Running: Codable, Equatable, Sendable {
        public var loss = 0.0, correct = 0, count = 0, steps = 0
        public init() {}
        mutating func add(loss: Double, correct: Int, count: Int) {
            self.loss += loss
            self.correct += correct
            self.count += count
            steps += 1
        }
        var meanLoss: Double { loss / Double(steps) }
        /// Top-1 accuracy in %.
        var accuracy: Double { 100 * Double(correct) / Double(max(1, count)) }
    }
    /// A balancer's state (FAMO's logits and Adam moments, DB-MTL's running gradients),
    /// absent for the others. Saved in the checkpoint's `balancer.safetensors` as float64
    /// (it can be T × the shared parameters); checkpoints written before kept it here, in
    /// `state.json`, and still load.
    public var weighting: [String: [Double]]?
    /// MPI ranks of the run that wrote it (absent: one process).
    public var ranks: Int?
    /// SHA-256 of the checkpoint's tensor files, checked before they are loaded.
    public var files: [String: String] = [:]
    public init() {}
}

/// A checkpoint folder: `model.safetensors` (every parameter and BatchNorm running
/// statistic by name, in our layout: conv weights kh×kw×cin×cout, linear in×out),
/// `optimizer.safetensors`, `balancer.safetensors` (a balancer's state, if it keeps any)
/// and `state.json`. Written to a temporary folder and swapped in, so a crash leaves the
/// previous checkpoint whole.
public enum Checkpoint {
    public static func save(to dir: String, store: ParameterStore, optimizer: [String: [Float]], state: TrainState, method: String) throws {
        let parent = (dir as NSString).deletingLastPathComponent
        let base = (dir as NSString).lastPathComponent
        let tmp = parent + "/.\(base).tmp"
        let fm = FileManager.default
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let model = SafeTensors.encode(store.entries.map { e in
            SafeTensors.Tensor(name: e.name, shape: e.shape, values: Array(UnsafeBufferPointer(start: store.values + e.offset, count: e.count)))
        }, metadata: ["format": "mola-swift", "method": method, "layout": "conv weight kh,kw,cin,cout; linear weight in,out; adapter a kh,kw,cin,r; adapter b r,cout"])
        let opt = SafeTensors.encode(optimizer.sorted { $0.key < $1.key }.map { SafeTensors.Tensor(name: $0.key, shape: [$0.value.count], values: $0.value) })
        var state = state
        var files = [("model.safetensors", model), ("optimizer.safetensors", opt)]
        if let w = state.weighting {
            files.append(("balancer.safetensors", SafeTensors.encode(w.sorted { $0.key < $1.key }.map {
                SafeTensors.Tensor(name: $0.key, shape: [$0.value.count], float64: $0.value)
            })))
            state.weighting = nil
        }
        state.files = Dictionary(uniqueKeysWithValues: files.map { ($0.0, Hash.sha256Hex(Data($0.1))) })
        files.append(("state.json", [UInt8](try encoder.encode(state))))
        // Checked before writing, so a full disk costs nothing; the previous checkpoint
        // stays until the new one is whole, so the space needed is the new one's.
        let needed = files.reduce(0) { $0 + $1.1.count } + 64 << 10
        let resume = "free at least \(DiskSpace.human(needed)) on the disk holding \(parent)" +
            (FileIO.exists(dir + "/state.json") ? " (the previous checkpoint in \(dir) is intact)" : "") + ", then continue with --resume"
        do {
            try DiskSpace.require(needed, at: parent, for: "the checkpoint", fix: resume)
            for (name, bytes) in files { try FileIO.writeAtomically(bytes, to: tmp + "/" + name) }
        } catch var e as DiskFullError {
            try? fm.removeItem(atPath: tmp)
            (e.path, e.needed, e.fix) = (dir, needed, resume)
            e.available = DiskSpace.available(at: parent) ?? e.available
            throw e
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        let old = parent + "/.\(base).old"
        try? fm.removeItem(atPath: old)
        if fm.fileExists(atPath: dir) { try fm.moveItem(atPath: dir, toPath: old) }
        try fm.moveItem(atPath: tmp, toPath: dir)
        try? fm.removeItem(atPath: old)
    }

    /// The folder to resume from: `dir`, or the previous checkpoint if a crash came between
    /// the two renames of `save`.
    public static func existing(_ dir: String) -> String? {
        if FileIO.exists(dir + "/state.json") { return dir }
        let old = (dir as NSString).deletingLastPathComponent + "/.\((dir as NSString).lastPathComponent).old"
        return FileIO.exists(old + "/state.json") ? old : nil
    }

    /// Loads a checkpoint into `store` after checking hashes, names and shapes.
    public static func load(from dir: String, into store: ParameterStore, configHash: String?) throws -> (TrainState, [String: [Float]]) {
        let statePath = dir + "/state.json"
        var state: TrainState
        do { state = try JSONDecoder().decode(TrainState.self, from: try FileIO.read(statePath)) } catch {
            throw DataError(file: statePath, "the checkpoint state cannot be read (\(error))", fix: "delete the checkpoint folder and start again")
        }
        if let configHash, state.configHash != configHash {
            throw DataError(file: statePath, "the checkpoint was made with a different config",
                            fix: "resume with the config it was made with, or start a fresh run (another output folder)")
        }
        func readChecked(_ name: String) throws -> [UInt8] {
            let path = dir + "/" + name
            let data = try FileIO.read(path)
            guard let want = state.files[name], Hash.sha256Hex(data) == want else {
                throw DataError(file: path, "checksum mismatch: the checkpoint is corrupt or incomplete",
                                fix: "delete \(dir) to start again, or restore it from a backup")
            }
            return [UInt8](data)
        }
        let model = try SafeTensors.decode(readChecked("model.safetensors"), file: dir + "/model.safetensors").tensors
        let byName = Dictionary(model.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for e in store.entries {
            guard let t = byName[e.name], t.shape == e.shape else {
                throw DataError(file: dir + "/model.safetensors", "tensor \(e.name) \(e.shape) is missing or has another shape",
                                fix: "this checkpoint belongs to a different model")
            }
            t.values.withUnsafeBufferPointer { (store.values + e.offset).update(from: $0.baseAddress!, count: e.count) }
        }
        let opt = try SafeTensors.decode(readChecked("optimizer.safetensors"), file: dir + "/optimizer.safetensors").tensors
        if state.files["balancer.safetensors"] != nil {
            let file = dir + "/balancer.safetensors"
            let w = try SafeTensors.decode(readChecked("balancer.safetensors"), file: file, float64: true).tensors
            state.weighting = try Dictionary(uniqueKeysWithValues: w.map { t in
                guard let d = t.float64 else { throw DataError(file: file, "\(t.name) is not float64", fix: "the checkpoint is damaged; start a fresh run") }
                return (t.name, d)
            })
        }
        return (state, Dictionary(uniqueKeysWithValues: opt.map { ($0.name, $0.values) }))
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }()
}
