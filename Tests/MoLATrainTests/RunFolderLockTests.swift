import Foundation
import MoLASupport
import MoLATrain
import Synchronization
import Testing

/// Two `mola-train run` into one run folder: the second refuses naming the holder; a lock
/// left by a run killed with SIGKILL is taken over by `--resume`, which finishes the run.
@Suite struct RunFolderLockTests {
    @Test func secondRunRefusesNamingTheHolder() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 4, evalEvery: 2)
        let dir = tmp.path + "/runs/uniform"
        var held: ProcessLock? = try ProcessLock(dir, what: "the run folder")
        #expect {
            _ = try TinyData.train(config)
        } throws: { e in
            "\(e)".contains("the run folder is in use by pid \(getpid()) on host \(ProcessInfo.processInfo.hostName)")
        }
        #expect(!FileIO.exists(dir + "/run.json"), "a refused run wrote into the folder")
        withExtendedLifetime(held) {}
        held = nil
        let (outcome, _) = try TinyData.train(config)
        #expect(outcome == .finished && FileIO.exists(dir + "/report.json"))
    }

    @Test func killedRunsLockIsTakenOverByResume() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 300, evalEvery: 5)
        let dir = tmp.path + "/runs/uniform"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable("mola-train"))
        p.arguments = ["run", config, "--quiet"]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileIO.exists(dir + "/checkpoints/latest/state.json") && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(ProcessLock.holder(of: dir)?.pid == p.processIdentifier)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let step = (try JSONSerialization.jsonObject(with: bytes(dir + "/checkpoints/latest/state.json")) as? [String: Any])?["step"] as? Int ?? 0
        #expect(step > 0 && step < 300, "killed at step \(step)")
        let r = try run(executable("mola-train"), ["run", config, "--resume", "--quiet"])
        #expect(r.stderr.contains("took over the run folder from pid \(p.processIdentifier)"), "\(r.stderr)")
        #expect(r.status == 0 && FileIO.exists(dir + "/report.json"), "\(r.stderr)")
        #expect(ProcessLock.holder(of: dir) == nil && !FileIO.exists(ProcessLock.path(for: dir)))
    }
}

/// Runs that ingest their manifest themselves (MPI ranks, parallel pipeline stages) wait
/// for one another's ingest instead of refusing; an up-to-date dataset takes no lock.
@Suite struct SharedIngestTests {
    @Test func twoRunsOfOneManifestShareItsIngest() throws {
        let tmp = TempDir()
        let csv = tmp.write("p.csv", (0..<300_000).map { "\($0 % 9),\($0 % 7),3,4,\($0 % 2)" }.joined(separator: "\n") + "\n")
        let manifest = tmp.write("m.yaml", """
            name: shared-\(getpid())
            image: {height: 4, width: 4, channels: 1}
            tasks:
              - name: t
                num_classes: 2
                sources: [{format: csv, path: \(csv), image_shape: [2, 2], split: {test: 0.2}}]
            """)
        let config = try TrainConfig.load(tmp.write("c.yaml", "name: c\ndata: {manifest: \(manifest)}\nmethod: uniform\noutput: \(tmp.path)/run\n"))
        let directory = FileManager.default.currentDirectoryPath + "/datasets/shared-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = tmp.path + "/c.yaml"
        let results = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let r = Result { try TrainingData(config: config, configFile: file, progress: false).directory }
            results.withLock { $0.append((try? r.get()) ?? "failed: \(r)") }
        }
        #expect(results.withLock { $0 } == Array(repeating: directory, count: 3))
    }
}
