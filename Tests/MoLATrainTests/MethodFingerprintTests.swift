import Foundation
import MoLAData
import MoLAReport
import MoLASupport
import MoLATrain
import Testing

/// The weights every method, balancer and training option reaches after 20 steps on the
/// tiny digits (seed 3, one thread), compared bit for bit with a committed fixture: a
/// restructuring of the training layer must not change a single number. Each run is a
/// child `mola-train` process, so no other test's settings can reach it.
///
/// After a change that is meant to alter the numbers, regenerate the fixture with
/// `MOLA_UPDATE_FIXTURES=1 swift test -c release --filter MethodFingerprint` and say why in
/// the commit.
@Suite struct MethodFingerprintTests {
    /// (label, method, extra config lines).
    static let variants: [(label: String, method: String, extra: String)] = [
        ("uniform", "uniform", ""),
        ("single-task", "single-task", ""),
        ("mola-grad", "mola-grad", ""),
        ("mola-router", "mola-router", ""),
        ("mmoe", "mmoe", ""),
        ("cgc", "cgc", "experts: {count: 1, per_task: 1}"),
        ("dselect-k", "dselect-k", "experts: {count: 4, k: 2}"),
        ("cross-stitch", "cross-stitch", ""),
        ("ple", "ple", "experts: {count: 1, per_task: 1}"),
        // Two planned epochs: the warm-up is over after a step, so the draws are covered.
        ("ltb", "ltb", "epochs: 2"),
        ("uniform+pcgrad-rep-grad", "uniform", "weighting: {name: pcgrad, rep_grad: true}"),
        ("hydra-lora", "hydra-lora", ""),
        ("uniform+pcgrad", "uniform", "weighting: pcgrad"),
        ("uniform+mgda", "uniform", "weighting: mgda"),
        ("uniform+cagrad", "uniform", "weighting: cagrad"),
        ("uniform+aligned-mtl", "uniform", "weighting: aligned-mtl"),
        ("uniform+famo", "uniform", "weighting: famo"),
        ("mola-grad+pcgrad", "mola-grad", "weighting: pcgrad"),
        ("mola-grad+famo", "mola-grad", "weighting: famo"),
        ("mola-grad+conv-lora", "mola-grad", "adapters: {rank: 2, alpha: 4, form: conv-lora}"),
        ("mola-router+conv-lora", "mola-router", "adapters: {rank: 2, alpha: 4, form: conv-lora}"),
        ("mola-grad+per-task-bn", "mola-grad", "batchnorm: per-task"),
        ("uniform+proportional+loss-selection", "uniform", "loss: {task_weighting: proportional}\nselection: validation-loss"),
        ("mola-grad+sampling", "mola-grad", "sampling: {temperature: 3}"),
        ("mola-grad+augment+adamw", "mola-grad", "augment: {crop_padding: 2, flip: true}\noptimizer: {name: adamw, warmup_steps: 5}"),
        // A wide last stage on 3×3 maps: the factorised per-task path (rows < groups·C_out·4).
        ("mola-grad+factorised", "mola-grad", "backbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 64], blocks: [1, 1, 1]}"),
        ("mola-grad+shufflenet", "mola-grad", "backbone: {name: shufflenet-v2, stem_width: 8, widths: [8, 16, 32], blocks: [1, 2, 1], last_width: 32}"),
        ("mola-grad+imagenet-stem", "mola-grad", "backbone: {name: resnet18, stem: imagenet, stem_width: 8, widths: [8, 8, 16, 16]}"),
    ]

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/method-weights-20-steps.json").path

    /// SHA-256 over every tensor of a checkpoint, by name: name, shape and raw float bits.
    static func weightHash(_ checkpoint: String) throws -> String {
        let file = checkpoint + "/model.safetensors"
        let tensors = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: file))), file: file).0
        var bytes = Data()
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            bytes.append(Data((t.name + "\(t.shape)").utf8))
            t.values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        }
        return Hash.sha256Hex(bytes)
    }

    /// The config of one variant: the shared tiny config, one thread, 20 steps.
    static func config(_ tmp: TempDir, _ v: (label: String, method: String, extra: String)) -> String {
        var text = try! String(contentsOfFile: TinyData.config(tmp, method: v.method, steps: 20, evalEvery: 10, output: v.label), encoding: .utf8)
        text = text.replacingOccurrences(of: "threads: 2", with: "threads: 1")
        for line in v.extra.split(separator: "\n") {
            let key = String(line.split(separator: ":")[0])
            // A variant's key replaces the shared config's line of that key.
            text = text.split(separator: "\n").filter { !$0.hasPrefix(key + ":") }.joined(separator: "\n") + "\n" + line
        }
        return tmp.write(v.label + "-config.yaml", text)
    }

    /// The config hash (what a resumed run checks its checkpoint against) of every variant
    /// stays as it was, so runs made before a change still resume after it. The dataset
    /// path, a temporary folder, is fixed first.
    @Test func configHashesStay() throws {
        let tmp = TempDir()
        var hashes: [String: String] = [:]
        for v in Self.variants {
            var c = try TrainConfig.load(Self.config(tmp, v))
            c.data.dataset = "datasets/tiny"
            hashes[v.label] = c.hash
        }
        let file = Self.fixture.replacingOccurrences(of: "method-weights-20-steps", with: "config-hashes")
        if ProcessInfo.processInfo.environment["MOLA_UPDATE_FIXTURES"] == "1" {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try (enc.encode(hashes) + Data("\n".utf8)).write(to: URL(fileURLWithPath: file))
            return
        }
        let want = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        for v in Self.variants { #expect(hashes[v.label] == want[v.label], "\(v.label): the config hash changed") }
    }

    @Test func everyMethodReachesTheFixtureWeights() throws {
        let tmp = TempDir()
        var hashes: [String: String] = [:]
        for v in Self.variants {
            let r = try run(executable("mola-train"), ["run", Self.config(tmp, v), "--quiet"])
            try #require(r.status == 0, "\(v.label): \(r.stderr)")
            let dir = tmp.path + "/" + v.label
            // Single-task: one model per task, each hashed.
            let models = v.method == "single-task" ? ["mnist", "optdigits"].map { dir + "/tasks/" + $0 } : [dir]
            hashes[v.label] = try models.map { try Self.weightHash($0 + "/checkpoints/latest") }.joined(separator: " ")
        }
        if ProcessInfo.processInfo.environment["MOLA_UPDATE_FIXTURES"] == "1" {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try (enc.encode(hashes) + Data("\n".utf8)).write(to: URL(fileURLWithPath: Self.fixture))
            return
        }
        let want = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixture)))
        #expect(Set(want.keys) == Set(hashes.keys))
        for v in Self.variants { #expect(hashes[v.label] == want[v.label], "\(v.label): the weights after 20 steps changed") }
    }
}
