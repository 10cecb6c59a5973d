import Foundation
import MoLAData
import MoLASupport
import Testing

@Suite struct IngestBehaviourTests {
    /// A small CSV dataset: 3 classes × 40 rows of 4×4 pixels.
    func smallManifest(_ dir: TempDir, extra: String = "validation: 0.25") -> String {
        var rows: [String] = []
        for i in 0..<120 { rows.append(((0..<16).map { "\(($0 * 7 + i * 13) % 256)" } + ["\(i % 3)"]).joined(separator: ",")) }
        let csv = dir.write("p.csv.gz", gzip(Array((rows.joined(separator: "\n") + "\n").utf8)))
        return dir.write("small.yaml", """
            name: small
            image: {height: 6, width: 6, channels: 3}
            seed: 5
            \(extra)
            shard_size_mib: 0.002
            tasks:
              - name: t
                classes: [x, y, z]
                sources: [{format: csv, path: \(csv), image_shape: [4, 4], split: {test: 0.2}}]
            """)
    }

    @Test func sameInputsGiveByteIdenticalShards() throws {
        let dir = TempDir("ingest")
        let m = smallManifest(dir)
        let a = try ingest(m, into: dir.file("a")), b = try ingest(m, into: dir.file("b"))
        #expect(a.index.shards.count > 3)  // small shard size: several shards per split
        #expect(a.index.shards == b.index.shards)
        for s in a.index.shards {
            #expect(FileManager.default.contentsEqual(atPath: dir.file("a/" + s.file), andPath: dir.file("b/" + s.file)))
        }
        // Stratified carving: 20% of each class's 40 rows → 8 test, 25% of the rest → 8 val.
        #expect(a.index.split(.test)!.perClass == [[8, 8, 8]])
        #expect(a.index.split(.val)!.perClass == [[8, 8, 8]])
        // A different seed carves differently.
        let c = try ingest(dir.write("seed.yaml", try String(contentsOfFile: m, encoding: .utf8).replacingOccurrences(of: "seed: 5", with: "seed: 6")),
                           into: dir.file("c"))
        #expect(c.index.shards.map(\.sha256) != a.index.shards.map(\.sha256))
    }

    @Test func unchangedInputsAreANoOpAndChangesRebuild() throws {
        let dir = TempDir("ingest")
        let m = smallManifest(dir)
        let first = try ingest(m, into: dir.file("out"))
        #expect(!first.upToDate)
        let again = try ingest(m, into: dir.file("out"))
        #expect(again.upToDate && again.seconds < 0.5)
        // Touching a source (new mtime) rebuilds; so does editing the manifest.
        let future = Date().addingTimeInterval(10)
        try FileManager.default.setAttributes([.modificationDate: future], ofItemAtPath: dir.file("p.csv.gz"))
        #expect(try !ingest(m, into: dir.file("out")).upToDate)
        _ = dir.write("small.yaml", try String(contentsOfFile: m, encoding: .utf8) + "\n# edited\n")
        #expect(try !ingest(m, into: dir.file("out")).upToDate)
        #expect(try ingest(m, into: dir.file("out")).upToDate)
        // A shard removed behind our back is noticed.
        try FileManager.default.removeItem(atPath: dir.file("out/" + first.index.shards[0].file))
        #expect(try !ingest(m, into: dir.file("out")).upToDate)
    }

    @Test func verifyNamesTheDamagedShard() throws {
        let dir = TempDir("ingest")
        let r = try ingest(smallManifest(dir), into: dir.file("out"))
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
        let shard = r.index.shards[1]
        let path = r.directory + "/" + shard.file
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let report = try DatasetVerifier.verify(directory: r.directory)
        #expect(report.problems.count == 1)
        #expect(report.problems[0].file == path && report.problems[0].message.contains("SHA-256 mismatch"))
        // A truncated shard is named too, by the reader as well.
        try Data(bytes.prefix(100)).write(to: URL(fileURLWithPath: path))
        #expect(try DatasetVerifier.verify(directory: r.directory).problems[0].message.contains("truncated"))
        #expect { try DatasetReader(directory: r.directory).load(shard.split) } throws: { ($0 as? DataError)?.file == path }
    }

    @Test func loaderReadsBackWhatWasWritten() throws {
        let dir = TempDir("ingest")
        let r = try ingest(smallManifest(dir), into: dir.file("out"))
        let reader = try DatasetReader(directory: r.directory)
        var total = 0
        for split in Split.allCases {
            let data = try reader.load(split, verifyHashes: true)
            #expect(data.count == r.index.split(split)!.count)
            #expect(data.images.count == data.count * 6 * 6 * 3)
            // Grey CSV pixels were repeated into 3 equal channels.
            let px = data.images
            let tiled = stride(from: 0, to: px.count, by: 3).allSatisfy { (i: Int) -> Bool in px[i] == px[i + 1] && px[i] == px[i + 2] }
            #expect(tiled)
            total += data.count
        }
        #expect(total == 120)
    }

    @Test func aKilledIngestLeavesTheOldDatasetWhole() throws {
        let dir = TempDir("kill")
        let fashion = dir.write("f.yaml", """
            name: f
            image: {height: 56, width: 56, channels: 3}
            tasks:
              - name: fashion
                num_classes: 10
                sources:
                  - {format: idx, images: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz,
                     labels: /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz, split: train}
            """)
        let small = smallManifest(dir)
        let out = dir.file("out")
        let old = try ingest(small, into: out)
        // Start a long ingest into the same folder and kill it mid-way.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable("mola-prep"))
        p.arguments = ["ingest", fashion, "--out", out, "--quiet"]
        try p.run()
        Thread.sleep(forTimeInterval: 1.0)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal, "the ingest finished before it could be killed")
        #expect(try DatasetIndex.read(directory: out) == old.index)
        #expect(try DatasetVerifier.verify(directory: out).ok)
        // The next run clears what the killed one left.
        let leftovers = { try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".out.") } }
        #expect(try !leftovers().isEmpty)
        _ = try ingest(small, into: out, force: true)
        #expect(try leftovers().isEmpty)
    }

    @Test func cliPrintsOneClearErrorAndExitsNonZero() throws {
        let dir = TempDir("cli")
        let m = dir.write("bad.yaml", "image: {height: 2, width: 2, channels: 1}\ntask: []\n")
        let r = try run(executable("mola-prep"), ["ingest", m, "--out", dir.file("o")])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: \(m): line 2, task: unknown key 'task' at the top level (did you mean 'tasks'?)"))
        let v = try run(executable("mola-prep"), ["verify", dir.path])
        #expect(v.status == 1 && v.stderr.contains("not a prepared dataset"))
    }
}
