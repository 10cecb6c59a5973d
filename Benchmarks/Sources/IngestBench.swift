import ArgumentParser
import Foundation
import MoLAData
import MoLATensor

/// Ingest and read-back speed against plain Python doing the same jobs:
/// 1. Fashion-MNIST train (60k IDX gz) → shards; reference numpy + savez_compressed.
/// 2. 10k PNGs (Fashion-MNIST written as 64×64 files, once, untimed) → 32×32 shards;
///    reference Pillow + numpy.
/// 3. The shards of job 1 read back into shuffled float batches; reference numpy.load.
/// 4. 10k colour JPEGs (96×96 crops of scikit-learn's photographs, written once by Pillow,
///    untimed) → 32×32×3 shards; reference Pillow + numpy.
struct IngestBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingest", abstract: "Ingest and shard-reading speed vs Python.")

    @OptionGroup var common: CommonOptions

    @Option(help: "Batch size of the read-back job.")
    var batch: Int = 128

    @Option(help: "Jobs to run, comma-separated: idx, png, read, jpeg.")
    var jobs: String = "idx,png,read,jpeg"

    @Flag(help: "Skip the Python references.")
    var noReference = false

    static let fashion = "/usr/share/datasets/fashion-mnist"

    func run() throws {
        common.apply()
        let work = URL(fileURLWithPath: common.work).standardized.path
        let script = packageRoot + "/Benchmarks/reference/ingest_reference.py"
        let t = common.threads

        let selected = Set(jobs.split(separator: ",").map(String.init))
        // 1. IDX → shards (also makes the shards job 3 reads).
        let idxManifest = work + "/fashion-train.yaml"
        try """
            name: fashion-train
            image: {height: 28, width: 28, channels: 1}
            validation: 0
            tasks:
              - name: fashion
                num_classes: 10
                sources:
                  - {format: idx, images: \(Self.fashion)/train-images-idx3-ubyte.gz,
                     labels: \(Self.fashion)/train-labels-idx1-ubyte.gz, split: train}
            """.write(toFile: idxManifest, atomically: true, encoding: .utf8)
        let ours1 = try ingestTime(idxManifest, out: work + "/ours-fashion")
        report(["bench": "ingest-idx", "impl": "mola-swift", "threads": t, "images": ours1.images,
                "seconds": ours1.seconds, "images_per_s": Double(ours1.images) / ours1.seconds])
        let ref1 = !selected.contains("idx") || noReference ? nil : pythonReference(script, ["idx", "--images", "\(Self.fashion)/train-images-idx3-ubyte.gz",
                                            "--labels", "\(Self.fashion)/train-labels-idx1-ubyte.gz",
                                            "--out", work + "/ref-fashion", "--repeat", "\(common.runs)"])
        if selected.contains("idx") && !noReference { emitReference("ingest-idx", ref1, ours: Double(ours1.images) / ours1.seconds) }

        if selected.contains("png") { try pngJob(work: work, script: script) }
        if selected.contains("read") { try readJob(work: work, script: script) }
        if selected.contains("jpeg") { try jpegJob(work: work, script: script) }
    }

    func jpegJob(work: String, script: String) throws {
        let tree = work + "/jpeg-tree"
        if !FileManager.default.fileExists(atPath: tree + "/.complete") {
            guard pythonReference(script, ["make-jpeg-tree", "--root", tree, "--count", "10000"]) != nil else {
                report(["bench": "ingest-jpeg", "error": "cannot write the JPEG tree (pip install pillow scikit-learn)"])
                return
            }
        }
        try treeJob("jpeg", tree: tree, format: "jpeg-tree", channels: 3, work: work, script: script)
    }

    func pngJob(work: String, script: String) throws {
        let tree = work + "/png-tree"
        try writePNGTree(tree, count: 10_000)
        try treeJob("png", tree: tree, format: "png-tree", channels: 1, work: work, script: script)
    }

    /// Ingests a class-folder tree into 32×32 shards, ours then the reference's.
    func treeJob(_ job: String, tree: String, format: String, channels: Int, work: String, script: String) throws {
        let manifest = work + "/\(job)-tree.yaml"
        try """
            name: \(job)-tree
            image: {height: 32, width: 32, channels: \(channels)}
            validation: 0
            tasks:
              - name: images
                sources: [{format: \(format), root: \(tree), split: train}]
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let ours = try ingestTime(manifest, out: work + "/ours-\(job)")
        report(["bench": "ingest-\(job)", "impl": "mola-swift", "threads": common.threads, "images": ours.images,
                "seconds": ours.seconds, "images_per_s": Double(ours.images) / ours.seconds])
        guard !noReference else { return }
        let ref = pythonReference(script, [job, "--root", tree, "--out", work + "/ref-\(job)", "--size", "32", "--repeat", "\(common.runs)"])
        emitReference("ingest-\(job)", ref, ours: Double(ours.images) / ours.seconds)
    }

    func readJob(work: String, script: String) throws {
        let t = common.threads

        // 3. Shards → shuffled float batches (our shards for both sides).
        let dataset = work + "/ours-fashion"
        var n = 0
        var loadBest = Double.infinity
        let seconds = try bestTime(runs: common.runs) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let data = try DatasetReader(directory: dataset).load(.train)
            loadBest = min(loadBest, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            let order = EpochOrder(count: data.count, seed: 0, epoch: 0)
            var buffer = [Float](repeating: 0, count: batch * data.shape.pixelCount)
            var checksum: Int32 = 0
            for b in order.batches(size: batch) {
                buffer.withUnsafeMutableBufferPointer { data.fillImages(b, into: $0.baseAddress!, threads: t) }
                checksum &+= data.labels(b).reduce(0, &+)
            }
            precondition(checksum >= 0)
            n = data.count
        }
        report(["bench": "read-batches", "impl": "mola-swift", "threads": t, "images": n, "batch": batch,
                "seconds": seconds, "load_seconds": loadBest, "images_per_s": Double(n) / seconds])
        guard !noReference else { return }
        let ref3 = pythonReference(script, ["read", "--dataset", dataset, "--batch", "\(batch)", "--repeat", "\(common.runs)"])
        emitReference("read-batches", ref3, ours: Double(n) / seconds)
    }

    func ingestTime(_ manifest: String, out: String) throws -> (images: Int, seconds: Double) {
        let m = try Manifest(path: manifest)
        var images = 0
        let seconds = try bestTime(runs: common.runs) {
            let r = try Ingest(manifest: m, options: .init(output: out, force: true, progress: false, threads: common.threads)).run()
            images = r.images
        }
        return (images, seconds)
    }

    func emitReference(_ bench: String, _ ref: [String: Any]?, ours: Double) {
        guard var ref else {
            report(["bench": bench, "impl": "python-reference", "error": "unavailable (pip install numpy pillow)"])
            return
        }
        ref["bench"] = bench
        ref["threads"] = 1
        if let theirs = ref["images_per_s"] as? Double { ref["mola_swift_speedup"] = (ours / theirs * 100).rounded() / 100 }
        report(ref)
    }

    /// Writes `count` Fashion-MNIST train images as 64×64 grey PNGs in class folders, once.
    func writePNGTree(_ root: String, count: Int) throws {
        let marker = root + "/.complete"
        if FileManager.default.fileExists(atPath: marker) { return }
        try? FileManager.default.removeItem(atPath: root)
        let images = try IDXArray(path: Self.fashion + "/train-images-idx3-ubyte.gz")
        let labels = try IDXArray(path: Self.fashion + "/train-labels-idx1-ubyte.gz")
        let up = Resampler(inHeight: 28, inWidth: 28, to: ImageShape(height: 64, width: 64, channels: 1), filter: .bilinear)
        for c in 0..<10 { try FileManager.default.createDirectory(atPath: "\(root)/class\(c)", withIntermediateDirectories: true) }
        var big = [UInt8](repeating: 0, count: 64 * 64)
        for i in 0..<count {
            let px = Array(images.bytes[(images.dataOffset + i * 784)..<(images.dataOffset + (i + 1) * 784)])
            big.withUnsafeMutableBufferPointer { up.apply(RawImage(height: 28, width: 28, channels: 1, pixels: px), into: $0.baseAddress!) }
            let label = labels.bytes[labels.dataOffset + i]
            try PNGCodec.write(RawImage(height: 64, width: 64, channels: 1, pixels: big), to: String(format: "%@/class%d/%05d.png", root, label, i))
        }
        _ = FileManager.default.createFile(atPath: marker, contents: nil)
    }
}
