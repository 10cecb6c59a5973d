import Foundation
import MoLAData
import MoLASupport
import Testing

/// Two `mola-prep ingest` of one dataset folder: the second refuses naming the holder, or
/// waits with --wait; a lock left by a killed ingest is taken over; nothing is corrupted.
@Suite struct ConcurrentIngestTests {
    let host = ProcessInfo.processInfo.hostName

    func manifest(_ dir: TempDir, csv: String) -> String {
        oneTaskManifest(dir, name: "m-\(UUID().uuidString.prefix(6))", shape: "{height: 4, width: 4, channels: 1}",
                        source: "{format: csv, path: \(csv), image_shape: [2, 2], split: train}")
    }

    func csv(_ dir: TempDir, rows: Int = 60) -> String {
        dir.write("p.csv", (0..<rows).map { "\($0 % 9),2,3,4,\($0 % 3)" }.joined(separator: "\n") + "\n")
    }

    @Test func secondIngestRefusesNamingTheHolderThenWaits() throws {
        let dir = TempDir("lock")
        let m = manifest(dir, csv: csv(dir)), out = dir.file("out")
        var held: ProcessLock? = try ProcessLock(out, what: "the dataset folder")
        let refused = try run(executable("mola-prep"), ["ingest", m, "--out", out, "--quiet"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("the dataset folder is in use by pid \(getpid()) on host \(host)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--wait") && refused.stderr.contains("kill \(getpid())"), "\(refused.stderr)")
        #expect(!FileIO.exists(out), "a refused ingest wrote the folder")

        let p = Process(), err = Pipe()
        p.executableURL = URL(fileURLWithPath: executable("mola-prep"))
        p.arguments = ["ingest", m, "--out", out, "--quiet", "--wait"]
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 0.5)
        #expect(p.isRunning, "--wait did not wait")
        withExtendedLifetime(held) {}  // held until here,
        held = nil                     // released now
        p.waitUntilExit()
        let said = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(said)")
        #expect(said.contains("waiting for pid \(getpid()) on host \(host)"), "\(said)")
        #expect(try DatasetVerifier.verify(directory: out).ok)
        #expect(!FileIO.exists(ProcessLock.path(for: out)), "a finished ingest leaves no lock file")
    }

    /// The first ingest holds the lock while it blocks reading a FIFO; killed with SIGKILL it
    /// cannot release, and the next ingest takes the lock over and says from whom.
    @Test func lockOfAKilledIngestIsTakenOver() throws {
        let dir = TempDir("lock")
        let fifo = dir.file("never.csv")
        #expect(mkfifo(fifo, 0o600) == 0)
        let out = dir.file("out")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable("mola-prep"))
        p.arguments = ["ingest", manifest(dir, csv: fifo), "--out", out, "--quiet"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(20)
        while ProcessLock.holder(of: out)?.pid != p.processIdentifier && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(ProcessLock.holder(of: out)?.pid == p.processIdentifier, "the ingest never took the lock")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(FileIO.exists(ProcessLock.path(for: out)) && ProcessLock.holder(of: out) == nil)

        let r = try run(executable("mola-prep"), ["ingest", manifest(dir, csv: csv(dir)), "--out", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("took over the dataset folder from pid \(p.processIdentifier) on host \(host)"), "\(r.stderr)")
        #expect(try DatasetVerifier.verify(directory: out).ok)
    }

    /// Two real ingests of one manifest started together, both forced to write: one waits
    /// for the other, both succeed, the folder verifies and nothing temporary is left.
    @Test func twoIngestsAtOnceBothFinishWhole() throws {
        let dir = TempDir("lock")
        let m = manifest(dir, csv: csv(dir, rows: 40_000)), out = dir.file("out")
        let jobs = (0..<2).map { _ -> (Process, Pipe) in
            let p = Process(), err = Pipe()
            p.executableURL = URL(fileURLWithPath: executable("mola-prep"))
            p.arguments = ["ingest", m, "--out", out, "--quiet", "--wait", "--force", "--threads", "1"]
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            return (p, err)
        }
        for (p, _) in jobs { try p.run() }
        var said: [String] = []
        for (p, err) in jobs {
            said.append(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(said.last!)")
        }
        let report = try DatasetVerifier.verify(directory: out)
        let index = try DatasetIndex.read(directory: out)
        #expect(report.ok && index.split(.train)?.count == 40_000)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".out.") }
        #expect(left.isEmpty, "\(left)")
    }
}
