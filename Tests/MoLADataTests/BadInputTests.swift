import Foundation
import MoLAData
import MoLASupport
import Testing

/// Every kind of bad input stops the ingest with the file (and row/member) named and leaves
/// no dataset behind; `--skip-bad` skips bad records and counts them.
@Suite struct BadInputTests {
    func expectFailure(_ manifest: String, out: String, file: String, location: String? = nil, message: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ingest(manifest, into: out)
            Issue.record("ingest succeeded but should have failed", sourceLocation: sourceLocation)
        } catch let e as DataError {
            #expect(e.file == file, "\(e)", sourceLocation: sourceLocation)
            if let location { #expect(e.location == location, "\(e)", sourceLocation: sourceLocation) }
            #expect(e.message.contains(message), "\(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: out), "a partial dataset was left behind", sourceLocation: sourceLocation)
        let parent = (out as NSString).deletingLastPathComponent
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.contains(".tmp-") }) ?? []
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)", sourceLocation: sourceLocation)
    }

    func pngTree(_ dir: TempDir) -> String {
        let good = PNGFixture.encode(width: 8, height: 8, colorType: 0, bitDepth: 8, samples: Array(repeating: 50, count: 64))
        for c in ["a", "b"] { for i in 0..<3 { _ = dir.write("tree/\(c)/\(i).png", good) } }
        return dir.path + "/tree"
    }

    @Test(arguments: ["bad CRC", "truncated", "not a PNG"])
    func corruptPNG(kind: String) throws {
        let dir = TempDir("bad")
        let root = pngTree(dir)
        let good = PNGFixture.encode(width: 8, height: 8, colorType: 0, bitDepth: 8, samples: Array(repeating: 50, count: 64))
        var bad = good
        switch kind {
        case "bad CRC": bad[good.count - 25] ^= 0x40
        case "truncated": bad = Array(good.prefix(40))
        default: bad = Array("GIF89a not a png".utf8)
        }
        let badFile = dir.write("tree/b/1.png", bad)
        let m = oneTaskManifest(dir, classes: "classes: [a, b]", source: "{format: png-tree, root: \(root), split: train}")
        expectFailure(m, out: dir.file("out"), file: badFile, message: "not a readable PNG")
        // --skip-bad keeps the rest and counts the bad one.
        let r = try ingest(m, into: dir.file("out"), skipBad: true)
        #expect(r.images == 5 && r.index.skipped.count == 1)
        #expect(r.index.skipped.records[0].contains(badFile))
    }

    @Test func truncatedNPZ() throws {
        let dir = TempDir("bad")
        let path = dir.file("set.npz")
        _ = try python("""
            import numpy as np
            np.savez_compressed('\(path)', train_images=np.random.default_rng(0).integers(0, 255, (50, 8, 8), dtype=np.uint8),
                                train_labels=np.zeros((50, 1), np.uint8))
            """)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 300).write(to: URL(fileURLWithPath: path))
        let m = oneTaskManifest(dir, source: "{format: npz, path: \(path)}")
        expectFailure(m, out: dir.file("out"), file: path, message: "not a readable zip/npz archive")
    }

    @Test func gzipThatEndsEarly() throws {
        let dir = TempDir("bad")
        let images = dir.write("img.gz", Array(gzip(idxBytes(dims: [100, 8, 8], data: (0..<6400).map { UInt8($0 % 251) })).dropLast(100)))
        let labels = dir.write("lbl", idxBytes(dims: [100], data: Array(repeating: 1, count: 100)))
        let m = oneTaskManifest(dir, source: "{format: idx, images: \(images), labels: \(labels), split: train}")
        expectFailure(m, out: dir.file("out"), file: images, message: "cannot gunzip")
    }

    @Test func idxCountsThatDisagree() throws {
        let dir = TempDir("bad")
        let images = dir.write("img", idxBytes(dims: [10, 8, 8], data: Array(repeating: 3, count: 640)))
        let labels = dir.write("lbl", idxBytes(dims: [9], data: Array(repeating: 1, count: 9)))
        let m = oneTaskManifest(dir, source: "{format: idx, images: \(images), labels: \(labels), split: train}")
        expectFailure(m, out: dir.file("out"), file: labels, message: "holds 9 labels but")
        // A header that promises more data than the file holds.
        let short = dir.write("short", idxBytes(dims: [10, 8, 8], data: Array(repeating: 3, count: 600)))
        let m2 = oneTaskManifest(dir, name: "m2", source: "{format: idx, images: \(short), labels: \(labels), split: train}")
        expectFailure(m2, out: dir.file("out"), file: short, message: "header promises")
    }

    @Test func csvRowOfTheWrongWidth() throws {
        let dir = TempDir("bad")
        let row = { (v: Int, label: Int) in (Array(repeating: "\(v)", count: 4) + ["\(label)"]).joined(separator: ",") }
        let csv = dir.write("p.csv", [row(1, 0), row(2, 1), "5,5,5,1", row(3, 2)].joined(separator: "\n") + "\n")
        let m = oneTaskManifest(dir, shape: "{height: 2, width: 2, channels: 1}",
                                source: "{format: csv, path: \(csv), image_shape: [2, 2], split: train}")
        expectFailure(m, out: dir.file("out"), file: csv, location: "line 3", message: "has 4 columns, expected 5")
        let r = try ingest(m, into: dir.file("out"), skipBad: true)
        #expect(r.images == 3 && r.index.skipped.count == 1)
    }

    @Test func labelOutsideTheClassList() throws {
        let dir = TempDir("bad")
        let csv = dir.write("p.csv", "1,2,3,4,0\n1,2,3,4,7\n1,2,3,4,2\n")
        let m = oneTaskManifest(dir, shape: "{height: 2, width: 2, channels: 1}",
                                source: "{format: csv, path: \(csv), image_shape: [2, 2], split: train}")
        expectFailure(m, out: dir.file("out"), file: csv, location: "line 2", message: "label 7 is outside the class list")
        let r = try ingest(m, into: dir.file("out"), skipBad: true)
        #expect(r.images == 2 && r.index.skipped.count == 1)
    }

    @Test func failedRebuildKeepsTheOldDataset() throws {
        let dir = TempDir("bad")
        let csv = dir.write("p.csv", "1,2,3,4,0\n1,2,3,4,1\n")
        let m = oneTaskManifest(dir, shape: "{height: 2, width: 2, channels: 1}",
                                source: "{format: csv, path: \(csv), image_shape: [2, 2], split: train}")
        let first = try ingest(m, into: dir.file("out"))
        _ = dir.write("p.csv", "1,2,3,4,0\n1,2,3,4,9\n")  // now bad
        #expect(throws: DataError.self) { try ingest(m, into: dir.file("out")) }
        #expect(try DatasetIndex.read(directory: dir.file("out")) == first.index)
        #expect(try DatasetVerifier.verify(directory: dir.file("out")).ok)
    }
}
