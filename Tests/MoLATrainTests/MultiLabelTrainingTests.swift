import Foundation
import MoLAData
import MoLAReport
import MoLATrain
import Testing

/// ChestMNIST-format data — `chestmnist.npz` with MedMNIST's key names and uint8 N×14
/// labels — beside a single-label task, trained by every method and balancer. Finding k
/// brightens block k of the image, so the findings can be learned (slowly: global pooling
/// keeps little of where a block is).
enum ChestData {
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "/mola-chest-\(getpid())"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try! run("python3", ["-c", """
            import numpy as np
            rng = np.random.default_rng(0)
            chest, pneu = {}, {}
            for split, n in [('train', 320), ('val', 64), ('test', 96)]:
                y = (rng.random((n, 14)) < 0.3).astype(np.uint8)
                x = rng.integers(0, 60, size=(n, 16, 16)).astype(np.int32)
                for k in range(14):
                    r, c = divmod(k, 4)
                    x[:, 4*r:4*r+4, 4*c:4*c+4] += 150 * y[:, k, None, None]
                chest[split + '_images'] = x.astype(np.uint8)
                chest[split + '_labels'] = y
                z = rng.integers(0, 2, size=(n, 1)).astype(np.uint8)
                w = rng.integers(0, 60, size=(n, 16, 16)).astype(np.int32)
                w[:, :, :8] += 150 * z[:, :, None]
                pneu[split + '_images'] = w.astype(np.uint8)
                pneu[split + '_labels'] = z
            np.savez_compressed('\(dir)/chestmnist.npz', **chest)
            np.savez_compressed('\(dir)/pneumoniamnist.npz', **pneu)
            """])
        precondition(r.status == 0, "numpy failed: \(r.stderr)")
        let manifest = """
            name: chest-format
            image: {height: 16, width: 16, channels: 1}
            tasks:
              - name: chest
                labels: multi
                classes: [atelectasis, cardiomegaly, effusion, infiltration, mass, nodule, pneumonia, pneumothorax,
                          consolidation, edema, emphysema, fibrosis, pleural thickening, hernia]
                sources: [{format: npz, path: \(dir)/chestmnist.npz}]
              - name: pneumonia
                classes: [normal, pneumonia]
                sources: [{format: npz, path: \(dir)/pneumoniamnist.npz}]
            """
        try! manifest.write(toFile: dir + "/chest.yaml", atomically: true, encoding: .utf8)
        _ = try! Ingest(manifest: try! Manifest(path: dir + "/chest.yaml"), options: .init(output: dir + "/data", progress: false)).run()
        return dir + "/data"
    }()

    /// A config on this data: TinyData's model, evaluated twice.
    static func config(_ tmp: TempDir, method: String, steps: Int, extra: String = "", output: String) -> String {
        TinyData.config(tmp, method: method, steps: steps, evalEvery: max(1, steps / 2), extra: extra, output: output, dataset: directory)
    }
}

@Suite(.serialized) struct MultiLabelTrainingTests {
    /// The shards keep MedMNIST's N×14 rows (read back by numpy) and the index says which
    /// task is multi-label; the verifier accepts them.
    @Test func shardsKeepTheLabelRows() throws {
        let index = try DatasetIndex.read(directory: ChestData.directory)
        #expect(index.tasks.map(\.labelKind) == [.multi, .single] && index.labelWidth == 14)
        let shard = try #require(index.shards(of: .test).first)
        let r = try run("python3", ["-c", """
            import numpy as np
            s = np.load('\(ChestData.directory)/\(shard.file)')
            src = np.load('\(ChestData.directory)/../chestmnist.npz')['test_labels']
            l, t = s['labels'], s['tasks']
            assert l.dtype == np.int64 and l.shape == (len(t), 14), (l.dtype, l.shape)
            assert (l[t == 0] == src).all()
            assert (l[t == 1][:, 1:] == -1).all() and set(l[t == 1][:, 0]) <= {0, 1}
            print(int(src.sum(axis=0)[2]))
            """])
        try #require(r.status == 0, "\(r.stderr)")
        // Per-label counts: the images with each finding present.
        #expect(index.split(.test)!.perClass[0][2] == Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(index.split(.test)!.perTask == [96, 96])
        #expect(try DatasetVerifier.verify(directory: ChestData.directory).ok)
    }

    /// MoLA-Grad with PCGrad learns the findings: the loss falls, the report has ACC, AUC
    /// and balanced accuracy per finding's means, and `eval` of the run agrees.
    @Test func molaGradWithABalancerLearnsTheFindings() throws {
        let tmp = TempDir("chest")
        let (outcome, dir) = try TinyData.train(ChestData.config(tmp, method: "mola-grad", steps: 160, extra: "weighting: pcgrad\noptimizer: {lr: 0.05}", output: "mola-grad"))
        #expect(outcome == .finished)
        let losses = metricsLines(dir).compactMap { $0["train_loss"] as? Double }
        #expect(losses.count == 2 && losses[1] < losses[0], "\(losses)")
        let report = try RunReport.read(dir)
        let chest = try #require(report.testMetrics?["chest"])
        #expect(chest.isMultiLabel && chest.labelConfusion?.count == 14 && chest.recall.count == 14)
        // Chance is 0.5 (a spread of about 0.02 for the mean of 14 findings over 96 images).
        #expect((chest.auc ?? 0) > 0.6, "AUC over the findings: \(chest.auc ?? -1)")
        #expect((50...100).contains(report.test.perTask["chest"]!), "ACC (mean over findings at ½): \(report.test.perTask["chest"]!)")
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        #expect(md.contains("### chest: each label's decisions (test)") && md.contains("| hernia |"))
        #expect(FileManager.default.fileExists(atPath: dir + "/confusion/00-chest.svg"))
        let ev = try Evaluator.evaluate(run: dir, dataset: ChestData.directory, split: .test, checkpoint: "best")
        #expect(ev.perTask == report.test.perTask, "eval \(ev.perTask) vs the report's \(report.test.perTask)")
        // predict on the dataset folder: each finding present above ½; the decisions give ACC.
        let p = try Prediction.run(runDirectory: dir, inputs: [ChestData.directory], task: "chest")
        #expect(p.rows.count == 96 && p.rows.allSatisfy { $0.probabilities.count == 14 })
        let decisions = p.rows.map { row -> Int in
            let predicted = Set(row.predicted.split(separator: "|").map(String.init)), truth = Set(row.truth!.split(separator: "|").map(String.init))
            return row.probabilities.filter { predicted.contains($0.0) == truth.contains($0.0) }.count
        }
        #expect(abs(100 * Double(decisions.reduce(0, +)) / Double(96 * 14) - report.test.perTask["chest"]!) < 1e-9)
        #expect(p.rows.allSatisfy { r in Set(r.predicted.split(separator: "|").map(String.init)) == Set(r.probabilities.filter { $0.1 > 0.5 }.map(\.0)) })
    }

    /// Every method and every balancer trains on the multi-label task beside the other.
    @Test(arguments: Method.all.map { ($0.name, "") } + Balancer.all.map { ("uniform", "weighting: \($0.name)") })
    func everyMethodAndBalancerTrains(_ method: String, _ extra: String) throws {
        let tmp = TempDir("chest")
        let (outcome, dir) = try TinyData.train(ChestData.config(tmp, method: method, steps: 6, extra: extra, output: "run"))
        #expect(outcome == .finished)
        let report = try RunReport.read(dir)
        #expect(report.testMetrics?["chest"]?.isMultiLabel == true && report.testMetrics?["pneumonia"]?.isMultiLabel == false)
        #expect(report.test.perTask.values.allSatisfy { $0.isFinite && $0 > 0 }, "\(report.test.perTask)")
        let losses = metricsLines(Method.named(method)!.modelPerTask ? dir + "/tasks/chest" : dir).compactMap { $0["train_loss"] as? Double }
        #expect(!losses.isEmpty && losses.allSatisfy(\.isFinite), "\(losses)")
    }
}
