import Foundation
import MoLAData
import MoLAReport
import MoLATrain
import Testing

/// All 12 2-D MedMNIST sets as `python -m medmnist download` leaves them — the real file
/// names, key names and label shapes (uint8 N×1, ChestMNIST's N×14), grey N×28×28 and RGB
/// N×28×28×3 — ingested by the shipped `medmnist.yaml` and trained. A class (or finding)
/// brightens the image (or a block of it), so there is something to learn; every class is
/// in every split, so every AUC is defined.
enum MedMNISTTwelve {
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "/mola-medmnist12-\(getpid())"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try! run("python3", ["-c", """
            import numpy as np
            flags = {'pathmnist': (9, 3), 'chestmnist': (14, 1), 'dermamnist': (7, 3), 'octmnist': (4, 1),
                     'pneumoniamnist': (2, 1), 'retinamnist': (5, 3), 'breastmnist': (2, 1), 'bloodmnist': (8, 3),
                     'tissuemnist': (8, 1), 'organamnist': (11, 1), 'organcmnist': (11, 1), 'organsmnist': (11, 1)}
            rng = np.random.default_rng(2)
            for flag, (k, c) in flags.items():
                arrays = {}
                for split, n in [('train', 48), ('val', 12), ('test', 16)]:
                    x = rng.integers(0, 60, size=(n, 28, 28)).astype(np.int32)
                    if flag == 'chestmnist':
                        y = (rng.random((n, 14)) < 0.3).astype(np.uint8)
                        y[0], y[1] = 1, 0  # every finding present and absent in every split
                        for f in range(14):
                            r, q = divmod(f, 4)
                            x[:, 7*r:7*r+7, 7*q:7*q+7] += 150 * y[:, f, None, None]
                    else:
                        y = rng.permutation(np.arange(n) % k)[:, None].astype(np.uint8)  # every class in every split
                        x += (180 // k) * y[:, :, None]
                    if c == 3:
                        x = np.repeat(x[..., None], 3, axis=3)
                    arrays[split + '_images'] = x.astype(np.uint8)
                    arrays[split + '_labels'] = y
                np.savez_compressed('\(dir)/' + flag + '.npz', **arrays)
            """])
        precondition(r.status == 0, "numpy failed: \(r.stderr)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        setenv("MEDMNIST_DIR", dir, 1)
        defer { unsetenv("MEDMNIST_DIR") }
        _ = try! Ingest(manifest: try! Manifest(path: root + "/data-manifests/medmnist.yaml"),
                        options: .init(output: dir + "/data", progress: false)).run()
        return dir + "/data"
    }()
}

@Suite(.serialized) struct MedMNISTTrainingTests {
    /// MoLA-Grad with PCGrad and MoLA-Router train on the 12 sets at once: every task has
    /// ACC, AUC and balanced accuracy in the report (chest's over its 14 findings) and the
    /// training loss falls.
    @Test(arguments: [("mola-grad", "weighting: pcgrad"), ("mola-router", "")])
    func allTwelveSetsTrain(_ method: String, _ extra: String) throws {
        let index = try DatasetIndex.read(directory: MedMNISTTwelve.directory)
        #expect(index.tasks.count == 12 && index.split(.train)!.perTask == Array(repeating: 48, count: 12))
        let tmp = TempDir("medmnist12")
        let config = TinyData.config(tmp, method: method, steps: 40, evalEvery: 20, extra: extra + "\noptimizer: {lr: 0.05}",
                                     output: method, dataset: MedMNISTTwelve.directory)
        let (outcome, dir) = try TinyData.train(config)
        #expect(outcome == .finished)
        let losses = metricsLines(dir).compactMap { $0["train_loss"] as? Double }
        #expect(losses.count == 2 && losses[1] < losses[0], "\(losses)")
        let report = try RunReport.read(dir)
        #expect(report.test.perTask.keys.sorted() == index.tasks.map(\.name).sorted())
        for task in index.tasks {
            let m = try #require(report.testMetrics?[task.name], "\(task.name) has no metrics")
            #expect(m.isMultiLabel == (task.name == "chest"))
            #expect(m.auc.map { $0.isFinite && (0...1).contains($0) } == true, "\(task.name): AUC \(String(describing: m.auc))")
            #expect(m.recall.count == task.classes.count && m.balancedAccuracy.isFinite)
        }
    }
}
