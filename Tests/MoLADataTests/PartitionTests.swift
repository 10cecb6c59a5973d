import Foundation
import Testing
import MoLAData

/// Partitioned ingest (`--part i/n`) and merge give exactly the records of one process:
/// same images, labels, tasks and splits (carved splits included), on the real digit sets.
@Suite(.serialized) struct PartitionTests {
    static let manifest = packageRoot + "/data-manifests/digit-domains.yaml"

    /// Per split, the records as sorted (task, label, pixels) keys.
    func records(_ dir: String) throws -> [Split: [String]] {
        let reader = try DatasetReader(directory: dir)
        var out: [Split: [String]] = [:]
        for split in Split.allCases where reader.index.split(split) != nil {
            let d = try reader.load(split)
            let n = d.shape.pixelCount
            out[split] = (0..<d.count).map { i in
                "\(d.tasks[i]) \(d.labels[i]) " + d.images[(i * n)..<((i + 1) * n)].map { String($0, radix: 16) }.joined(separator: ",")
            }.sorted()
        }
        return out
    }

    @Test func partsMergedEqualOneProcess() throws {
        let dir = TempDir("parts")
        let m = try Manifest(path: Self.manifest)
        let whole = try Ingest(manifest: m, options: .init(output: dir.file("whole"), progress: false)).run()
        for i in 0..<3 {
            let p = try Ingest(manifest: m, options: .init(output: dir.file("parted"), progress: false, part: (i, 3))).run()
            #expect(p.index.part?.index == i && p.images > 0 && p.images < whole.images)
        }
        let merged = try Ingest.merge(directory: dir.file("parted"))
        #expect(merged.images == whole.images)
        #expect(merged.index.splits == whole.index.splits)
        #expect(try records(dir.file("parted")) == records(dir.file("whole")))
        #expect(try DatasetVerifier.verify(directory: dir.file("parted")).ok)
        // The merged folder is what an ingest of the whole manifest would write: a no-op now.
        let again = try Ingest(manifest: m, options: .init(output: dir.file("parted"), progress: false)).run()
        #expect(again.upToDate)
    }

    @Test func aMissingOrForeignPartIsNamed() throws {
        let dir = TempDir("parts-bad")
        let m = try Manifest(path: Self.manifest)
        for i in [0, 2] { _ = try Ingest(manifest: m, options: .init(output: dir.file("d"), progress: false, part: (i, 3))).run() }
        #expect { try Ingest.merge(directory: dir.file("d")) } throws: { "\($0)".contains("parts missing: 1/3") }
        _ = try Ingest(manifest: m, options: .init(output: dir.file("d"), progress: false, part: (1, 2))).run()
        #expect { try Ingest.merge(directory: dir.file("d")) } throws: { "\($0)".contains("partition into") }
        #expect(!FileManager.default.fileExists(atPath: dir.file("d")), "nothing merged")
    }

    @Test func theCommandLineRunsPartsAndMerges() throws {
        let dir = TempDir("parts-cli")
        let prep = executable("mola-prep")
        for i in 0..<2 {
            let r = try run(prep, ["ingest", Self.manifest, "--out", dir.file("d"), "--part", "\(i)/2", "--quiet"])
            #expect(r.status == 0, "part \(i): \(r.stderr)")
        }
        let merged = try run(prep, ["merge", dir.file("d")])
        #expect(merged.status == 0 && merged.stdout.contains("merged"), "\(merged.stderr)")
        let bad = try run(prep, ["ingest", Self.manifest, "--part", "2/2"])
        #expect(bad.status != 0 && bad.stderr.contains("0 ≤ i < n"))
    }
}
