import Foundation
import MoLAData
import MoLASupport
import Testing

/// Every reader on real files cut short and on headers that declare more than the data
/// holds: the clear error, in well under a second and a few times the file's size in
/// memory, measured on the child process that reads it (`mola-prep probe`, the readers
/// ingest uses). The files come from scripts/make-damaged-files.py (pydicom's CT slice,
/// nibabel's 4-D example, scikit-learn's photo, numpy arrays, our formats).
@Suite(.serialized) struct DamagedFileTests {
    struct Case: Decodable { var file: String; var format: String; var kind: String }

    static let folder: String = {
        let dir = NSTemporaryDirectory() + "/mola-damaged-\(getpid())"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/make-damaged-files.py").path
        let r = try! run("python3", [script, dir])
        precondition(r.status == 0, r.stderr)
        return dir
    }()

    static var cases: [Case] {
        (try? JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/cases.json")))) ?? []
    }

    /// Memory of a probe of a tiny good file: the process itself (runtime, libraries).
    static let baselineKB: Int = {
        let r = try! measured(executable("mola-prep"), ["probe", folder + "/images-idx3-good-ubyte"])
        precondition(r.status == 0, r.stderr)
        return r.peakKB
    }()

    @Test func everyFormatFailsFastAndSmall() throws {
        let cases = Self.cases
        #expect(Set(cases.map(\.format)).count >= 11, "\(Set(cases.map(\.format)))")
        for c in cases {
            let path = Self.folder + "/" + c.file
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            let r = try measured(executable("mola-prep"), ["probe", "--format", c.format, path])
            let label = "\(c.file) (\(c.format), \(c.kind))"
            if c.kind == "good" {
                #expect(r.status == 0, "\(label): \(r.stderr)")
            } else if c.format != "yaml" {  // a YAML cut short is often still YAML
                #expect(r.status == 1 && r.stderr.hasPrefix("error: \(path)"), "\(label): status \(r.status), \(r.stderr)")
            }
            #expect(!r.stderr.contains("Fatal error") && r.status < 128, "\(label) crashed: \(r.stderr)")
            #expect(r.seconds < 1, "\(label) took \(r.seconds) s")
            // A few times the file's size above the process's own baseline (the volumes are
            // decoded to Float64, 4× their 16-bit samples).
            let allowedKB = Self.baselineKB + 8 * size / 1024 + 8 * 1024
            #expect(r.peakKB <= allowedKB, "\(label): \(r.peakKB) KB at peak, allowed \(allowedKB) (file \(size) bytes)")
        }
    }

    /// A dataset whose index.json claims more images than its shards can hold, or is cut
    /// short: refused before anything is allocated.
    @Test func damagedIndexIsRefusedBeforeAllocating() throws {
        let dir = TempDir("idx")
        let csv = dir.write("p.csv", (0..<50).map { "\($0 % 7),2,3,4,\($0 % 2)" }.joined(separator: "\n") + "\n")
        let m = oneTaskManifest(dir, shape: "{height: 2, width: 2, channels: 1}", source: "{format: csv, path: \(csv), image_shape: [2, 2], split: train}")
        _ = try ingest(m, into: dir.file("out"))
        let index = dir.file("out/index.json")
        let text = try String(contentsOfFile: index, encoding: .utf8)
        let good = try measured(executable("mola-prep"), ["probe", index])
        #expect(good.status == 0, "\(good.stderr)")
        for (name, damaged) in [("more", text.replacingOccurrences(of: "\"count\" : 50", with: "\"count\" : 500000000000")),
                                ("cut", String(text.prefix(text.count / 2)))] {
            try damaged.write(toFile: index, atomically: true, encoding: .utf8)
            let r = try measured(executable("mola-prep"), ["probe", index])
            #expect(r.status == 1 && r.stderr.contains("index.json"), "\(name): \(r.stderr)")
            #expect(r.seconds < 1 && r.peakKB < Self.baselineKB + 16 * 1024, "\(name): \(r.seconds) s, \(r.peakKB) KB")
        }
        #expect(text.contains("\"count\" : 50"), "the index's count field changed its spelling: this test must follow")
    }

    /// The case of the report: ingest of a NIfTI folder holding truncated copies of a real
    /// volume, with --skip-bad on two threads, stays small and fast (it took 13 s and 2 GB
    /// per file, and ran a machine out of memory).
    @Test func truncatedVolumesCostLittleInIngest() throws {
        let dir = TempDir("nii")
        let volume = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/example4d-good.nii.gz")))
        _ = dir.write("tree/brain/good.nii.gz", volume)
        for (i, cut) in [50_000, 120_000, 200_000, 300_000].enumerated() {
            _ = dir.write("tree/\(i % 2 == 0 ? "brain" : "other")/cut\(i).nii.gz", Array(volume.prefix(cut)))
        }
        _ = dir.write("tree/other/good.nii.gz", volume)
        let manifest = dir.write("m.yaml", """
            name: nii
            kind: tasks
            image: {height: 32, width: 32, channels: 1}
            tasks:
              - name: t
                classes: [brain, other]
                sources:
                  - {format: nifti, root: \(dir.path)/tree, split: train}
            """)
        let r = try measured(executable("mola-prep"), ["ingest", manifest, "--out", dir.file("out"), "--skip-bad", "--threads", "2", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.seconds < 5 && r.peakKB < Self.baselineKB + 64 * 1024, "\(r.seconds) s, \(r.peakKB) KB")
        let index = try DatasetIndex.read(directory: dir.file("out"))
        #expect(index.skipped.count == 4, "\(index.skipped)")
    }
}
