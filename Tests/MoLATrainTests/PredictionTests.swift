import Foundation
import MoLAData
import MoLAReport
import MoLATrain
import Testing

/// `mola-train predict` on files as a user has them: the PNG files of a test split give
/// exactly the accuracy `eval` reports on the ingested split; a multi-frame DICOM from
/// pydicom's test files (its RT dose, 15 frames) gives one row per frame; a damaged file gets ingest's error, or is
/// skipped with --skip-bad.
@Suite(.serialized) struct PredictionTests {
    /// A folder kept for the suite (the process's temporary folder, like the tiny dataset's).
    struct Folder: Sendable {
        let path: String
        init(_ path: String) {
            self.path = path
            try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        func write(_ name: String, _ text: String) -> String {
            try! text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
            return path + "/" + name
        }
    }

    /// scikit-learn's digits as PNG class folders (train/ and test/), ingested at 12×12, and
    /// a short uniform run on them.
    static let setup: (tmp: Folder, run: String, dataset: String) = {
        let tmp = Folder(NSTemporaryDirectory() + "/mola-predict-\(getpid())")
        let script = """
            import os, sys
            from PIL import Image
            from sklearn.datasets import load_digits
            d = load_digits()
            for i, (img, y) in enumerate(zip(d.images, d.target)):
                split = "test" if i % 5 == 0 else "train"
                folder = os.path.join(sys.argv[1], split, str(y))
                os.makedirs(folder, exist_ok=True)
                Image.fromarray((img * 255 / 16).astype("uint8")).save(os.path.join(folder, f"{i:04d}.png"))
            """
        let r = try! run("python3", ["-c", script, tmp.path + "/digits"])
        precondition(r.status == 0, "Pillow or scikit-learn missing (scripts/setup-tests.sh): \(r.stderr)")
        let manifest = tmp.write("digits.yaml", """
            name: png-digits
            image: {height: 12, width: 12, channels: 1}
            seed: 0
            validation: 0.1
            tasks:
              - name: digits
                classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
                sources:
                  - {format: png-tree, root: \(tmp.path)/digits/train, split: train}
                  - {format: png-tree, root: \(tmp.path)/digits/test, split: test}
            """)
        let dataset = tmp.path + "/data"
        _ = try! Ingest(manifest: try! Manifest(path: manifest), options: .init(output: dataset, progress: false)).run()
        let config = tmp.write("uniform.yaml", """
            name: png-digits-uniform
            data: {dataset: \(dataset)}
            method: uniform
            backbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 16], blocks: [1, 1, 1]}
            epochs: 1000
            max_steps: 40
            eval_every: 20
            batch_size: 32
            seed: 1
            threads: 2
            output: \(tmp.path)/run
            """)
        var training = TrainingRun(configFile: config)
        training.progress = false
        training.log = { _ in }
        _ = try! training.run()
        return (tmp, tmp.path + "/run", dataset)
    }()

    @Test func predictingTheTestFilesGivesEvalsAccuracy() throws {
        let (tmp, run, dataset) = Self.setup
        let eval = try Evaluator.evaluate(run: run, dataset: dataset, split: .test, checkpoint: "best")
        let out = tmp.path + "/predictions.csv"
        let cli = try MoLATrainTests.run(executable("mola-train"), ["predict", run, tmp.path + "/digits/test", "--out", out])
        try #require(cli.status == 0, "\(cli.stderr)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines[0] == ["source", "position", "task", "predicted"] + (0..<10).map { "p_\($0)" })
        let rows = lines.dropFirst()
        #expect(rows.count == eval.images && rows.count == 360)
        let correct = rows.filter { URL(fileURLWithPath: $0[0]).deletingLastPathComponent().lastPathComponent == $0[3] }.count
        #expect(abs(100 * Double(correct) / Double(rows.count) - eval.perTask["digits"]!) < 1e-9, "predict \(correct)/\(rows.count), eval \(eval.perTask)")
        for row in rows {
            let p = row[4...].compactMap(Double.init)
            #expect(p.count == 10 && abs(p.reduce(0, +) - 1) < 1e-4 && row[2] == "digits" && row[1].isEmpty)
        }
    }

    /// A dataset folder as input: its test records, each with its true class, agree with
    /// eval as the files do.
    @Test func predictingTheDatasetFolderGivesEvalsAccuracy() throws {
        let (_, run, dataset) = Self.setup
        let eval = try Evaluator.evaluate(run: run, dataset: dataset, split: .test, checkpoint: "best")
        let r = try Prediction.run(runDirectory: run, inputs: [dataset])
        #expect(r.rows.count == 360 && r.rows.allSatisfy { $0.source == dataset && $0.truth != nil && $0.position.hasPrefix("test record ") })
        let correct = r.rows.filter { $0.predicted == $0.truth }.count
        #expect(abs(100 * Double(correct) / Double(r.rows.count) - eval.perTask["digits"]!) < 1e-9)
        #expect(r.csv.hasPrefix("source,position,task,predicted,truth,p_0,"))
        let val = try Prediction.run(runDirectory: run, inputs: [dataset], split: .val)
        #expect(val.rows.count == (try DatasetIndex.read(directory: dataset)).split(.val)!.count)
    }

    /// A NIfTI volume (nibabel's example4d: 128×96×24, 2 time points) gives one row per
    /// non-constant axial slice of each time point, as nibabel counts them.
    @Test func aNIfTIVolumeGivesARowPerSlice() throws {
        let (_, run, _) = Self.setup
        let r0 = try MoLATrainTests.run("python3", ["-c", """
            import os, nibabel as nib, numpy as np
            from nibabel.testing import data_path
            f = os.path.join(data_path, 'example4d.nii.gz')
            v = np.asanyarray(nib.load(f).dataobj)
            print(f); print(' '.join(f't {t} slice {k}' .replace(' ', '_') for t in range(v.shape[3]) for k in range(v.shape[2]) if v[:, :, k, t].min() != v[:, :, k, t].max()))
            """])
        try #require(r0.status == 0, "nibabel missing (scripts/setup-tests.sh): \(r0.stderr)")
        let lines = r0.stdout.split(separator: "\n").map(String.init)
        let path = lines[0], expected = lines[1].split(separator: " ").map { $0.replacingOccurrences(of: "_", with: " ") }
        let r = try Prediction.run(runDirectory: run, inputs: [path])
        #expect(!expected.isEmpty && r.rows.map(\.position) == expected, "\(r.rows.map(\.position).prefix(5)) vs \(expected.prefix(5))")
        #expect(r.rows.allSatisfy { $0.source == path && $0.probabilities.count == 10 })
    }

    @Test func aMultiFrameDICOMGivesARowPerFrame() throws {
        let (_, run, _) = Self.setup
        // pydicom's RT dose: 15 frames of 10×10, 32-bit, uncompressed.
        let file = try MoLATrainTests.run("python3", ["-c", "from pydicom.data import get_testdata_file as g; print(g('rtdose.dcm'))"])
        try #require(file.status == 0, "pydicom missing (scripts/setup-tests.sh): \(file.stderr)")
        let path = file.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = try Prediction.run(runDirectory: run, inputs: [path])
        #expect(r.rows.count == 15, "\(r.rows.map(\.position))")
        #expect(r.rows.map(\.position) == (0..<15).map { "frame \($0)" } && r.rows.allSatisfy { $0.source == path })
    }

    @Test func aDamagedFileGetsIngestsErrorOrIsSkipped() throws {
        let (tmp, run, _) = Self.setup
        let folder = tmp.path + "/mixed"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let good = try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/digits/test/3").sorted().prefix(2)
        for f in good { try FileManager.default.copyItem(atPath: tmp.path + "/digits/test/3/" + f, toPath: folder + "/" + f) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + good.first!))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: folder + "/cut.png"))
        let refused = try MoLATrainTests.run(executable("mola-train"), ["predict", run, folder])
        #expect(refused.status == 1 && refused.stderr.contains("cut.png") && refused.stderr.contains("--skip-bad"), "\(refused.stderr)")
        let skipped = try MoLATrainTests.run(executable("mola-train"), ["predict", run, folder, "--skip-bad"])
        #expect(skipped.status == 0 && skipped.stdout.split(separator: "\n").count == 3 && skipped.stderr.contains("skipped 1"), "\(skipped.stderr)")
    }
}
