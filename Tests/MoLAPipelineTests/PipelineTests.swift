import Foundation
import MoLAData
import MoLAPipeline
import MoLASupport
import Synchronization
import Testing

/// A scratch project: files, a params file and a pipeline of small shell stages.
final class Project {
    let root: String
    init() {
        root = NSTemporaryDirectory() + "/mola-pipe-\(getpid())-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ name: String, _ text: String) {
        let p = root + "/" + name
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: false, encoding: .utf8)
    }
    func read(_ name: String) -> String? { try? String(contentsOfFile: root + "/" + name, encoding: .utf8) }
    var pipelineFile: String { root + "/pipelines/p.yaml" }

    /// a.txt → A; b.txt → B (reads param y); A + B → C. D reads x only.
    static func standard() -> Project {
        let p = Project()
        p.write("a.txt", "alpha\n")
        p.write("b.txt", "beta\n")
        p.write("pipelines/params.yaml", "x: 1\ny: {z: 2}\n")
        p.write("pipelines/p.yaml", """
            params: pipelines/params.yaml
            vars: {suffix: out}
            stages:
              A:
                cmd: cat a.txt > A.${vars.suffix}
                deps: [a.txt]
                outs: [A.out]
              B:
                cmd: (cat b.txt; echo ${params.y.z}) > B.out
                deps: [b.txt]
                params: [y.z]
                outs: [B.out]
              C:
                cmd: mkdir -p C && cat A.out B.out > C/all.txt
                deps: [A.out, B.out]
                outs: [C]
              D:
                foreach: [one, two]
                do:
                  cmd: echo ${item} ${params.x} > D-${item}.txt
                  params: [x]
                  outs: ["D-${item}.txt"]
            """)
        return p
    }

    func run(_ targets: [String] = [], force: Set<String> = [], jobs: Int = 1, overrides: [String: String] = [:]) throws -> [String] {
        let r = try PipelineRunner(try Pipeline.load(pipelineFile, overrides: overrides), log: { _ in })
        return try r.run(targets: targets, force: force, jobs: jobs).ran.sorted()
    }
    func plan() throws -> [String: String] {
        let r = try PipelineRunner(try Pipeline.load(pipelineFile), log: { _ in })
        return Dictionary(uniqueKeysWithValues: try r.plan().map { ($0.name, $0.status.text) })
    }
}

@Suite struct PipelineTests {
    @Test func firstRunRunsAllThenNothing() throws {
        let p = Project.standard()
        #expect(try p.run() == ["A", "B", "C", "D@one", "D@two"])
        #expect(p.read("C/all.txt") == "alpha\nbeta\n2\n")
        let start = Date()
        #expect(try p.run() == [])
        #expect(Date().timeIntervalSince(start) < 1)
        #expect(try p.plan().values.allSatisfy { $0 == "up to date" })
    }

    /// A stage learns which pipeline runs it (what `mola-train compare --page` names as the
    /// page's maker), as a command from the root would name it.
    @Test func stagesSeeTheirPipelineFile() throws {
        let p = Project()
        p.write("pipelines/p.yaml", "stages:\n  who:\n    cmd: echo \"$MOLA_PIPELINE_FILE\" > who.txt\n    outs: [who.txt]\n")
        #expect(try p.run() == ["who"])
        #expect(p.read("who.txt") == "pipelines/p.yaml\n")
    }

    @Test func changedInputRerunsItsStageAndDownstreamOnly() throws {
        let p = Project.standard()
        _ = try p.run()
        p.write("a.txt", "ALPHA\n")
        #expect(try p.plan()["A"] == "stale: dep a.txt changed")
        #expect(try p.plan()["C"] == "stale: upstream A will run")
        #expect(try p.plan()["B"] == "up to date")
        #expect(try p.run() == ["A", "C"])
        #expect(p.read("C/all.txt") == "ALPHA\nbeta\n2\n")
    }

    @Test func onlyTheParamsAStageReadsMatter() throws {
        let p = Project.standard()
        _ = try p.run()
        p.write("pipelines/params.yaml", "x: 1\ny: {z: 2}\nunused: 5\n")
        #expect(try p.run() == [])
        p.write("pipelines/params.yaml", "x: 7\ny: {z: 2}\n")
        #expect(try p.plan()["D@one"] == "stale: param x changed (1 → 7)")
        #expect(try p.run() == ["D@one", "D@two"])
        #expect(try p.run(overrides: ["y.z": "3"]) == ["B", "C"])
    }

    @Test func overridesAreCheckedLikeTheFile() throws {
        let p = Project.standard()
        p.write("pipelines/params.yaml", "x: 1\ny: {z: 2}\nrate: 0.5\nflag: true\nwidths: [4, 8]\nname: a\n")
        func message(_ overrides: [String: String]) -> String {
            do { _ = try Pipeline.load(p.pipelineFile, overrides: overrides); return "loaded" } catch { return "\(error)" }
        }
        #expect(message(["y.zz": "3"]).contains("no such parameter (did you mean 'y.z'?)"))
        #expect(message(["x": "many"]).contains("expected an integer like the file's value 1"))
        #expect(message(["rate": "fast"]).contains("expected a number"))
        #expect(message(["flag": "2"]).contains("expected true or false"))
        #expect(message(["widths": "8"]).contains("expected a list"))
        #expect(message(["x": "3", "rate": "1", "flag": "off", "widths": "[4, 4, 8]", "name": "12"]) == "loaded")
    }

    @Test func deletedOrEditedOutRerunsItsStage() throws {
        let p = Project.standard()
        _ = try p.run()
        try FileManager.default.removeItem(atPath: p.root + "/B.out")
        #expect(try p.plan()["B"] == "stale: out B.out is missing")
        // B writes the same bytes again, so C (decided by content) stays up to date.
        #expect(try p.run() == ["B"])
        p.write("C/all.txt", "edited by hand\n")
        #expect(try p.plan()["C"] == "stale: out C changed on disk")
        #expect(try p.run() == ["C"])
        #expect(try p.run(force: ["A"]) == ["A"])
        #expect(try p.run(force: ["D"]) == ["D@one", "D@two"])
    }

    @Test func failingStageKeepsTheLockConsistent() throws {
        let p = Project.standard()
        p.write("pipelines/p.yaml", """
            stages:
              A: {cmd: cat a.txt > A.out, deps: [a.txt], outs: [A.out]}
              F: {cmd: test -f ok.flag && cp A.out F.out, deps: [A.out], outs: [F.out]}
            """)
        #expect(throws: DataError.self) { try p.run() }
        let lock = try LockFile.read(p.root + "/pipelines/p.lock")
        #expect(Set(lock.stages.keys) == ["A"])
        p.write("ok.flag", "")
        #expect(try p.run() == ["F"])
    }

    @Test func parallelGivesTheSameResultsAsSerial() throws {
        let one = Project.standard(), two = Project.standard()
        _ = try one.run(jobs: 1)
        _ = try two.run(jobs: 2)
        let a = try LockFile.read(one.root + "/pipelines/p.lock"), b = try LockFile.read(two.root + "/pipelines/p.lock")
        #expect(a.stages.mapValues(\.outs) == b.stages.mapValues(\.outs))
    }

    @Test func cyclesDuplicateOutsAndMissingDepsAreRefused() {
        let p = Project()
        func loadError(_ yaml: String) -> String {
            p.write("pipelines/p.yaml", yaml)
            do { _ = try Pipeline.load(p.pipelineFile); return "no error" } catch { return "\(error)" }
        }
        let cycle = loadError("stages:\n  a: {cmd: 'true', deps: [y], outs: [x]}\n  b: {cmd: 'true', deps: [x], outs: [y]}\n")
        #expect(cycle.contains("cycle") && cycle.contains("a → b → a") || cycle.contains("b → a → b"), "\(cycle)")
        let dup = loadError("stages:\n  a: {cmd: 'true', outs: [x]}\n  b: {cmd: 'true', outs: [x]}\n")
        #expect(dup.contains("stages 'a' and 'b' both write x"), "\(dup)")
        let missing = loadError("stages:\n  a: {cmd: 'true', deps: [nowhere.txt], outs: [x]}\n")
        #expect(missing.contains("nowhere.txt does not exist and no stage writes it"), "\(missing)")
        let typo = loadError("stages:\n  a: {cmd: 'true', dep: [x]}\n")
        #expect(typo.contains("unknown key 'dep'") && typo.contains("did you mean 'deps'"), "\(typo)")
    }

    @Test func exportsAMakefileAndDot() throws {
        let p = Project.standard()
        let pipeline = try Pipeline.load(p.pipelineFile)
        #expect(pipeline.makefile.contains(".make-stamps/C: .make-stamps/A .make-stamps/B"))
        #expect(pipeline.dot.contains("\"A\" -> \"C\""))
        #expect(pipeline.dagText.contains("C  ← A, B"))
    }

    /// `foreach: {files: …}` makes one stage per matching file (minus `except`), and
    /// `${items.STAGE}` one word of a command, or one dep, per item: a new config file joins
    /// the pipeline and its comparison with no list edited.
    @Test func foreachOverFilesAndItemsOfAStage() throws {
        let p = Project()
        for n in ["common", "b", "a"] { p.write("configs/\(n).yaml", "\(n)\n") }
        p.write("configs/notes.txt", "x\n")
        p.write("pipelines/p.yaml", """
            stages:
              train:
                foreach: {files: configs/*.yaml, except: [common]}
                do:
                  cmd: cp configs/${item}.yaml run-${item}.txt
                  deps: ["configs/${item}.yaml"]
                  outs: ["run-${item}.txt"]
              compare:
                cmd: cat run-${items.train}.txt > all.txt
                deps: ["run-${items.train}.txt"]
                outs: [all.txt]
            """)
        let pipeline = try Pipeline.load(p.pipelineFile)
        #expect(pipeline.stages.map(\.name) == ["train@a", "train@b", "compare"])
        #expect(pipeline.stages[2].command == "cat run-a.txt run-b.txt > all.txt")
        #expect(pipeline.stages[2].deps == ["run-a.txt", "run-b.txt"])
        #expect(try p.run() == ["compare", "train@a", "train@b"])
        #expect(p.read("all.txt") == "a\nb\n")
        p.write("configs/c.yaml", "c\n")  // a new file: its own stage, and the comparison reruns
        #expect(try p.run() == ["compare", "train@c"])
        #expect(p.read("all.txt") == "a\nb\nc\n")
    }

    /// The shipped pipelines load, and those for data we do not have plan without running.
    @Test(arguments: ["quickstart", "digits-fashion", "digit-domains", "medmnist", "radimagenet", "vlcs"])
    func shippedPipelinesLoadAndPlan(_ name: String) throws {
        var url = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: url.path + "/Package.swift") { url.deleteLastPathComponent() }
        let pipeline = try Pipeline.load(url.path + "/pipelines/\(name).yaml")
        #expect(pipeline.stages.count >= 3)
        #expect(pipeline.stages.contains { $0.command.contains("mola-train compare") })
        // A dry run needs only the manifests and configs, not the data.
        let plan = try PipelineRunner(pipeline, log: { _ in }).plan()
        #expect(plan.count == pipeline.stages.count)
    }
}

/// Two `mola-pipeline run` of one pipeline: the second refuses naming the holder, or with
/// `.wait` runs after the first, finding everything up to date.
@Suite struct PipelineLockTests {
    @Test func secondRunRefusesOrWaits() throws {
        let p = Project.standard()
        var held: ProcessLock? = try ProcessLock(p.pipelineFile, what: "the pipeline")
        #expect {
            _ = try p.run()
        } throws: { e in
            "\(e)".contains("the pipeline is in use by pid \(getpid()) on host \(ProcessInfo.processInfo.hostName)")
        }
        #expect(p.read("A.out") == nil, "a refused run ran a stage")
        withExtendedLifetime(held) {}
        held = nil
        // Two runs at once, both waiting: the stages run once, the other run finds them done.
        let ran = Mutex<[[String]]>([])
        let file = p.pipelineFile
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            let r = try! PipelineRunner(try! Pipeline.load(file), log: { _ in })
            let s = try! r.run(contention: .wait(waiting: { _ in }))  // stop: never
            ran.withLock { $0.append(s.ran) }
        }
        let both = ran.withLock { $0 }.sorted { $0.count > $1.count }
        #expect(both[0].count == 5 && both[1].isEmpty, "\(both)")
        #expect(p.read("C/all.txt") == "alpha\nbeta\n2\n")
    }
}
