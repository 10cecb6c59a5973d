import Foundation
import MoLAData
import MoLASupport
import MoLATrain
import Testing

/// A tmpfs of a given size, mounted for one test (needs root, as CI has).
final class Tmpfs {
    let path: String
    init(megabytes: Int) throws {
        path = NSTemporaryDirectory() + "/mola-tmpfs-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let r = try run("mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path])
        guard r.status == 0 else { throw DataError(file: path, "cannot mount a tmpfs: \(r.stderr)") }
    }
    func resize(megabytes: Int) throws {
        let r = try run("mount", ["-o", "remount,size=\(megabytes)m", path])
        guard r.status == 0 else { throw DataError(file: path, "cannot resize the tmpfs: \(r.stderr)") }
    }
    deinit {
        _ = try? run("umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A disk that fills during an ingest or a checkpoint write: a clear error naming the path
/// and the space needed, the previous dataset or checkpoint intact, nothing half-written
/// left, and after space is freed the same command (or `--resume`) finishes.
@Suite(.serialized, .enabled(if: geteuid() == 0, "mounts a tmpfs: needs root, as CI has"))
struct FullDiskTests {
    /// A manifest of `rows` 28×28 images of random (incompressible) pixels.
    func randomManifest(_ tmp: TempDir, name: String, rows: Int) -> String {
        var rng = RandomGenerator(seed: 7)
        let csv = (0..<rows).map { i in ((0..<784).map { _ in "\(rng.nextInt(below: 256))" } + ["\(i % 3)"]).joined(separator: ",") }
        let file = tmp.write("\(name).csv", csv.joined(separator: "\n") + "\n")
        return tmp.write("\(name).yaml", """
            name: \(name)
            image: {height: 28, width: 28, channels: 1}
            seed: 1
            validation: 0
            tasks:
              - name: t
                num_classes: 3
                sources:
                  - {format: csv, path: \(file), image_shape: [28, 28], split: train}
            """)
    }

    @Test func ingestOntoAFullDisk() throws {
        let tmp = TempDir(), disk = try Tmpfs(megabytes: 1)
        let out = disk.path + "/ds"
        let small = try run(executable("mola-prep"), ["ingest", randomManifest(tmp, name: "small", rows: 100), "--out", out, "--quiet"])
        #expect(small.status == 0, "\(small.stderr)")
        let before = try DatasetIndex.read(directory: out)

        let big = randomManifest(tmp, name: "big", rows: 4000)  // 3.1 MB of shards
        let full = try run(executable("mola-prep"), ["ingest", big, "--out", out, "--quiet"])
        #expect(full.status == 1)
        #expect(full.stderr.hasPrefix("error: \(out): no space left on the disk for the dataset: it needs 3."), "\(full.stderr)")
        #expect(full.stderr.contains("fix: free about 3.") && full.stderr.contains("(the dataset already there is intact)"), "\(full.stderr)")
        #expect(try DatasetIndex.read(directory: out) == before && DatasetVerifier.verify(directory: out).ok)
        let left = try FileManager.default.contentsOfDirectory(atPath: disk.path)
        #expect(left == ["ds"], "the failed ingest left \(left)")

        try disk.resize(megabytes: 8)
        let again = try run(executable("mola-prep"), ["ingest", big, "--out", out, "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try DatasetIndex.read(directory: out).split(.train)?.count == 4000 && DatasetVerifier.verify(directory: out).ok)
    }

    func training(_ config: String, output: String? = nil, resume: Bool = false) -> TrainingRun {
        var r = TrainingRun(configFile: config)
        // Checkpoints of a few MB: the file system's page rounding is noise.
        r.overrides = ["backbone.widths=[32,64,128]"] + (output.map { ["output=\($0)"] } ?? [])
        r.progress = false
        r.resume = resume
        r.log = { _ in }
        return r
    }

    @Test func checkpointOntoAFullDiskThenResume() throws {
        let tmp = TempDir()
        // The run uninterrupted, on a roomy disk: what the resumed one must equal.
        let reference = TinyData.config(tmp, method: "uniform", steps: 20, evalEvery: 5, output: "reference")
        _ = try training(reference).run()
        let refDir = tmp.path + "/reference"
        let latest = FileIO.folderBytes(refDir + "/checkpoints/latest"), best = FileIO.folderBytes(refDir + "/checkpoints/best")

        // Room for step 5's two checkpoints and not for step 10's first.
        let disk = try Tmpfs(megabytes: 64)
        let dir = disk.path + "/run"
        let config = TinyData.config(tmp, method: "uniform", steps: 20, evalEvery: 5, output: "on-tmpfs")
        let room = latest + best + (64 << 10) + best / 2 + (32 << 10)
        let filler = disk.path + "/filler"
        #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: DiskSpace.available(at: disk.path)! - room)))
        #expect {
            _ = try training(config, output: dir).run()
        } throws: { e in
            let text = "\(e)"
            let named = text.hasPrefix("\(dir)/checkpoints/latest: ") || text.hasPrefix("\(dir)/checkpoints/best: ")
            return e is DiskFullError && named && text.contains("no space left on the disk for the checkpoint: it needs ")
                && text.contains("is intact), then continue with --resume")
        }
        let state = try JSONSerialization.jsonObject(with: bytes(dir + "/checkpoints/latest/state.json")) as? [String: Any]
        #expect(state?["step"] as? Int == 5, "the previous checkpoint is step 5's")
        let hidden = try FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints").filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "the failed write left \(hidden)")

        try FileManager.default.removeItem(atPath: filler)
        let (outcome, _) = try training(config, output: dir, resume: true).run()
        #expect(outcome == .finished)
        for f in ["checkpoints/latest/model.safetensors", "checkpoints/best/model.safetensors"] {
            #expect(bytes(dir + "/" + f) == bytes(refDir + "/" + f), "\(f) differs from the uninterrupted run")
        }
    }
}
