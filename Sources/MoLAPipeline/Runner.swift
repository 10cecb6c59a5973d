import Foundation
import MoLASupport
import Synchronization

/// Decides which stages are stale (by content: deps, command, selected params, tool
/// version, outs on disk) and runs them in dependency order, `jobs` at a time.
/// Unchecked Sendable: stages of one wave run on several threads; the lock's records are
/// read and written under `mutex`, the hasher guards its own cache, the rest is immutable.
public final class PipelineRunner: @unchecked Sendable {
    public enum Status: Equatable {
        case upToDate
        case stale(String)
        public var isStale: Bool { self != .upToDate }
        public var text: String { if case .stale(let why) = self { return "stale: \(why)" } else { return "up to date" } }
    }

    public let pipeline: Pipeline
    public let lockPath: String
    private var lockRecords: LockFile
    /// The lock file's records as they are now.
    public var lock: LockFile { mutex.withLock { lockRecords } }
    let hasher: ContentHasher
    let log: @Sendable (String) -> Void
    private let mutex = NSLock()

    public init(_ pipeline: Pipeline, log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws {
        self.pipeline = pipeline
        lockPath = pipeline.file.hasSuffix(".yaml") ? String(pipeline.file.dropLast(5)) + ".lock" : pipeline.file + ".lock"
        lockRecords = try LockFile.read(lockPath)
        hasher = ContentHasher(cacheFile: pipeline.root + "/.mola-pipeline-cache.json")
        self.log = log
    }

    static var toolVersion: String { "mola-pipeline \(MoLAVersion.string)" }

    func path(_ p: String) -> String { pipeline.root + "/" + p }

    /// Why stage `i` must run, judged against the lock and the files as they are now.
    public func status(_ i: Int) throws -> Status {
        let s = pipeline.stages[i]
        guard let e = lock.stages[s.name] else { return .stale("never ran") }
        if e.tool != Self.toolVersion { return .stale("tool version changed (\(e.tool) → \(Self.toolVersion))") }
        for k in s.params.keys.sorted() where e.params[k] != s.params[k] {
            return .stale("param \(k) changed (\(e.params[k] ?? "unset") → \(s.params[k]!))")
        }
        if Set(e.params.keys) != Set(s.params.keys) { return .stale("the stage's params changed") }
        // After params: a command that embeds a changed param is reported as the param.
        if e.command != s.command { return .stale("command changed") }
        for d in s.deps {
            let h = try hasher.hash(path(d))
            if e.deps[d] == nil { return .stale("new dep \(d)") }
            if h != e.deps[d] { return .stale("dep \(d) changed") }
        }
        if Set(e.deps.keys) != Set(s.deps) { return .stale("the stage's deps changed") }
        for o in s.outs {
            guard let h = try hasher.hash(path(o)) else { return .stale("out \(o) is missing") }
            if h != e.outs[o] { return .stale("out \(o) changed on disk") }
        }
        return .upToDate
    }

    /// Every selected stage's status in run order, as a dry run sees it: a stage below a
    /// stale one is stale too (its deps will be rewritten).
    public func plan(targets: [String] = [], force: Set<String> = []) throws -> [(name: String, status: Status)] {
        let force = try expand(force)
        let selected = try selection(targets)
        var willRun = Set<Int>()
        var out: [(String, Status)] = []
        for i in pipeline.order where selected.contains(i) {
            var st = try status(i)
            if force.contains(pipeline.stages[i].name) { st = .stale("forced") }
            if !st.isStale, let up = pipeline.upstream[i].first(where: willRun.contains) {
                st = .stale("upstream \(pipeline.stages[up].name) will run")
            }
            if st.isStale { willRun.insert(i) }
            out.append((pipeline.stages[i].name, st))
        }
        hasher.save()
        return out
    }

    /// Stage names, a foreach group's name standing for all its items.
    func expand(_ names: Set<String>) throws -> Set<String> {
        var out = Set<String>()
        for n in names {
            let hits = pipeline.stages.map(\.name).filter { $0 == n || $0.hasPrefix(n + "@") }
            guard !hits.isEmpty else {
                throw DataError(file: pipeline.file, "--force \(n): no such stage", fix: "stages: \(pipeline.stages.map(\.name).joined(separator: ", "))")
            }
            out.formUnion(hits)
        }
        return out
    }

    /// The named stages and everything they need (all stages when none are named).
    func selection(_ targets: [String]) throws -> Set<Int> {
        if targets.isEmpty { return Set(pipeline.stages.indices) }
        var result = Set<Int>()
        func add(_ i: Int) { if result.insert(i).inserted { pipeline.upstream[i].forEach(add) } }
        for t in targets {
            let hits = pipeline.stages.indices.filter { pipeline.stages[$0].name == t || pipeline.stages[$0].name.hasPrefix(t + "@") }
            guard !hits.isEmpty else {
                throw DataError(file: pipeline.file, "no stage named '\(t)'", fix: "stages: \(pipeline.stages.map(\.name).joined(separator: ", "))")
            }
            hits.forEach(add)
        }
        return result
    }

    public struct Summary { public var ran: [String] = []; public var upToDate: [String] = [] }

    /// Runs the stale stages (and `force`d ones) in dependency order, at most `jobs` at once.
    /// Each success is written to the lock at once; a failure stops the run after the
    /// stages already started, leaving the records of finished stages intact. One run of a
    /// pipeline at a time: a second refuses (or, with `.wait`, waits) while one holds it.
    public func run(targets: [String] = [], force: Set<String> = [], jobs: Int = 1,
                    contention: ProcessLock.Contention = .refuse) throws -> Summary {
        let lock = try ProcessLock(pipeline.file, what: "the pipeline", contention: contention)
        defer { withExtendedLifetime(lock) {} }
        // Read again now that no one else runs it: a run we waited for has just written them.
        let records = try LockFile.read(lockPath)
        mutex.withLock { lockRecords = records }
        let force = try expand(force)
        let selected = try selection(targets)
        var done = Set<Int>(), summary = Summary()
        var failure: (String, String)? = nil
        while failure == nil {
            let ready = pipeline.order.filter { selected.contains($0) && !done.contains($0) && pipeline.upstream[$0].allSatisfy { !selected.contains($0) || done.contains($0) } }
            if ready.isEmpty { break }
            for wave in stride(from: 0, to: ready.count, by: max(1, jobs)).map({ Array(ready[$0..<min(ready.count, $0 + max(1, jobs))]) }) {
                let results = Mutex([(Int, Result<Bool, any Error>)](repeating: (0, .success(false)), count: wave.count))
                DispatchQueue.concurrentPerform(iterations: wave.count) { k in
                    let i = wave[k]
                    let r = Result { try self.runIfStale(i, forced: force.contains(self.pipeline.stages[i].name)) }
                    results.withLock { $0[k] = (i, r) }
                }
                for (i, r) in results.withLock({ $0 }) {
                    done.insert(i)
                    switch r {
                    case .success(true): summary.ran.append(pipeline.stages[i].name)
                    case .success(false): summary.upToDate.append(pipeline.stages[i].name)
                    case .failure(let e): if failure == nil { failure = (pipeline.stages[i].name, "\(e)") }
                    }
                }
                if failure != nil { break }
            }
        }
        hasher.save()
        if let (name, message) = failure {
            throw DataError(file: pipeline.file, "stage '\(name)' failed: \(message)",
                            fix: "fix the cause and run again: finished stages are recorded and will not rerun")
        }
        return summary
    }

    /// Returns whether the stage ran.
    func runIfStale(_ i: Int, forced: Bool) throws -> Bool {
        let s = pipeline.stages[i]
        let st = forced ? .stale("forced") : try status(i)
        guard st.isStale else { log("\(s.name): up to date"); return false }
        log("\(s.name): running (\(st.text.dropFirst(7)))\n  $ \(s.command)")
        var deps: [String: String] = [:]
        for d in s.deps { deps[d] = try hasher.hash(path(d)) ?? "" }
        let start = Date()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", s.command]
        p.currentDirectoryURL = URL(fileURLWithPath: pipeline.root)
        var env = ProcessInfo.processInfo.environment
        // The package's own tools first: stages call mola-prep and mola-train by name.
        env["PATH"] = pipeline.root + "/.build/release:" + (env["PATH"] ?? "/usr/bin:/bin")
        // What a stage's outputs can name as what made them (`mola-train compare --page`).
        env["MOLA_PIPELINE_FILE"] = pipeline.displayFile
        p.environment = env
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw DataError(file: pipeline.file, "`\(s.command)` exited with status \(p.terminationStatus)") }
        var outs: [String: String] = [:]
        for o in s.outs {
            guard let h = try hasher.hash(path(o)) else {
                throw DataError(file: pipeline.file, location: "stages.\(s.name).outs", "the command succeeded but did not write \(o)", fix: "fix the stage's outs or its command")
            }
            outs[o] = h
        }
        try mutex.withLock {
            lockRecords.stages[s.name] = LockFile.Entry(command: s.command, tool: Self.toolVersion, deps: deps, params: s.params, outs: outs)
            try lockRecords.write(lockPath)
        }
        log("\(s.name): done in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        return true
    }
}
