import Foundation
import MoLAData
import MoLASupport
import Testing

/// Multi-label tasks at ingest: a tree with a `file,<label>…` table, and every way a
/// manifest or its files can get them wrong, each with an error naming the file and the fix.
@Suite struct MultiLabelIngestTests {
    static let grey8: [UInt8] = PNGFixture.encode(width: 8, height: 8, colorType: 0, bitDepth: 8, samples: Array(repeating: 90, count: 64))

    /// A png-tree whose table marks findings per file: the records' bit sets follow the rows.
    @Test func treeWithAFindingsTable() throws {
        let dir = TempDir("multi-tree")
        for i in 0..<6 { _ = dir.write("scans/s\(i).png", Self.grey8) }
        _ = dir.write("scans/findings.csv", """
            file,effusion,mass,nodule
            s0.png,1,0,0
            s1.png,0,1,1
            s2.png,0,0,0
            s3.png,1,1,1
            s4.png,0,0,1
            s5.png,1,0,1
            """)
        let m = oneTaskManifest(dir, classes: "classes: [effusion, mass, nodule]\n    labels: multi",
                                source: "{format: png-tree, root: scans, labels: scans/findings.csv, split: train}")
        let r = try ingest(m, into: dir.file("out"))
        #expect(r.index.tasks[0].labelKind == .multi && r.index.labelWidth == 3)
        let train = try DatasetReader(directory: r.directory).load(.train)
        #expect(train.labels == [0b001, 0b110, 0b000, 0b111, 0b100, 0b101])
        #expect(r.index.split(.train)!.perClass == [[3, 2, 4]])
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
    }

    func npz(_ dir: TempDir, labels: String) throws -> String {
        _ = try python("""
            import numpy as np
            np.savez('\(dir.path)/a.npz', images=np.zeros((4, 8, 8), np.uint8), labels=np.array(\(labels), np.uint8))
            """)
        return "{format: npz, path: a.npz, split: train}"
    }

    func failure(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func npzLabelsOfTheWrongShapeOrValue() throws {
        let dir = TempDir("multi-npz")
        // Several labels per image for a single-label task: say how to declare it.
        let rows = try npz(dir, labels: "[[0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 1]]")
        let single = oneTaskManifest(dir, name: "single", source: rows)
        let e1 = failure { _ = try ingest(single, into: dir.file("o1")) }
        #expect(e1.contains("a.npz") && e1.contains("3 labels per image") && e1.contains("set `labels: multi`"), "\(e1)")
        // Fewer columns than the task's labels.
        let four = oneTaskManifest(dir, name: "four", classes: "classes: [a, b, c, d]\n    labels: multi", source: rows)
        let e2 = failure { _ = try ingest(four, into: dir.file("o2")) }
        #expect(e2.contains("the multi-label task has 4 labels (N×4 expected)"), "\(e2)")
        // A value that is not 0 or 1: the record is named, and --skip-bad skips it.
        let bad = try npz(dir, labels: "[[0, 1, 1], [1, 2, 0], [0, 0, 0], [1, 1, 1]]")
        let three = oneTaskManifest(dir, name: "three", classes: "classes: [a, b, c]\n    labels: multi", source: bad)
        let e3 = failure { _ = try ingest(three, into: dir.file("o3")) }
        #expect(e3.contains("images.npy[1]") && e3.contains("label value 2 is not 0 or 1") && e3.contains("--skip-bad"), "\(e3)")
        let skipped = try ingest(three, into: dir.file("o4"), skipBad: true)
        #expect(skipped.images == 3 && skipped.index.skipped.count == 1)
    }

    @Test func tablesThatDoNotMatchTheTask() throws {
        let dir = TempDir("multi-table")
        for i in 0..<2 { _ = dir.write("scans/s\(i).png", Self.grey8) }
        _ = dir.write("scans/multi.csv", "file,effusion,mass\ns0.png,1,0\ns1.png,0,1\n")
        _ = dir.write("scans/half.csv", "file,effusion,mass\ns0.png,1,0\ns1.png,0,yes\n")
        let source = { (table: String) in "{format: png-tree, root: scans, labels: scans/\(table), split: train}" }
        // A column per label for a single-label task.
        let single = oneTaskManifest(dir, name: "single", classes: "classes: [effusion, mass]", source: source("multi.csv"))
        let e1 = failure { _ = try ingest(single, into: dir.file("o1")) }
        #expect(e1.contains("multi.csv") && e1.contains("single-label") && e1.contains("set `labels: multi`"), "\(e1)")
        // The header's labels are not the task's.
        let other = oneTaskManifest(dir, name: "other", classes: "classes: [effusion, nodule]\n    labels: multi", source: source("multi.csv"))
        let e2 = failure { _ = try ingest(other, into: dir.file("o2")) }
        #expect(e2.contains("are not the labels of task 't'") && e2.contains("file,effusion,nodule"), "\(e2)")
        // A cell that is not 0 or 1.
        let half = oneTaskManifest(dir, name: "half", classes: "classes: [effusion, mass]\n    labels: multi", source: source("half.csv"))
        let e3 = failure { _ = try ingest(half, into: dir.file("o3")) }
        #expect(e3.contains("half.csv") && e3.contains("line 3") && e3.contains("'yes' under mass is not 0 or 1"), "\(e3)")
    }

    @Test func manifestsThatCannotGiveSeveralLabels() throws {
        let dir = TempDir("multi-manifest")
        let noClasses = oneTaskManifest(dir, name: "a", classes: "labels: multi", source: "{format: npz, path: a.npz, split: train}")
        #expect(failure { _ = try Manifest(path: noClasses) }.contains("needs its label names"))
        let names = (0..<32).map { "f\($0)" }.joined(separator: ", ")
        let tooMany = oneTaskManifest(dir, name: "b", classes: "classes: [\(names)]\n    labels: multi", source: "{format: npz, path: a.npz, split: train}")
        #expect(failure { _ = try Manifest(path: tooMany) }.contains("at most 31 labels"))
        let idx = oneTaskManifest(dir, name: "c", classes: "classes: [x, y]\n    labels: multi",
                                  source: "{format: idx, images: i.gz, labels: l.gz, split: train}")
        let e = failure { _ = try Manifest(path: idx) }
        #expect(e.contains("c.yaml") && e.contains("cannot give task 't' several labels") && e.contains("labels: table.csv"), "\(e)")
        let kind = oneTaskManifest(dir, name: "d", classes: "classes: [x, y]\n    labels: many", source: "{format: npz, path: a.npz, split: train}")
        #expect(failure { _ = try Manifest(path: kind) }.contains("'many' is not one of single, multi"))
    }
}
