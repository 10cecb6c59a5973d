import Foundation
import MoLAData
import MoLAReport
import MoLATrain
import Testing

/// Data-parallel training under a real `mpirun -np 2` on loopback, one thread per rank.
@Suite(.serialized) struct DataParallelTests {
    /// mpirun as CI runs it: as root, two ranks on two cores, shared memory without the
    /// cross-process copy a container forbids.
    static func mpirunCommand(_ np: Int, _ args: [String]) -> String {
        let launcher = "mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none -np \(np)"
        return "\(launcher) \(([executable("mola-train")] + args).map { "'\($0)'" }.joined(separator: " "))"
    }

    static func mpirun(_ np: Int, _ args: [String], extraEnvironment: String = "") throws -> CommandResult {
        try run("bash", ["-c", "\(extraEnvironment) \(mpirunCommand(np, args)) 2>&1"])
    }

    /// mpirun in the background, its output (stdout and stderr) in the pipe. The test runner
    /// may start children with SIGTERM blocked: it is unblocked, so mpirun can be stopped.
    static func startMPIJob(_ np: Int, _ args: [String]) throws -> (Process, Pipe) {
        let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT}); "
            + "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execvp('bash', ['bash', '-c', sys.argv[1]])"
        let job = Process(), out = Pipe()
        job.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        job.arguments = ["-c", unblock, "exec " + mpirunCommand(np, args)]
        job.standardOutput = out
        job.standardError = out
        try job.run()
        return (job, out)
    }

    static func requireMPI() throws {
        let r = try run("bash", ["-c", "command -v mpirun"])
        try #require(r.status == 0, "OpenMPI is missing: apt-get install openmpi-bin libopenmpi-dev (scripts/setup.sh does)")
    }

    static func weights(_ dir: String, checkpoint: String = "latest") throws -> [String: [Float]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/\(checkpoint)/model.safetensors")))
        return Dictionary(uniqueKeysWithValues: try SafeTensors.decode(bytes, file: dir).0.map { ($0.name, $0.values) })
    }

    /// Steps of the runs that two ranks and one process must train alike. Two: each
    /// rank's share, the reductions, the balancers' combination and their state carried
    /// to the next step. Not more: the order of sums (two ranks, or two threads in one
    /// process alike) differs in the last bits, and on this tiny net at lr 0.05 that jumps
    /// by orders of magnitude within one step after the second (as when pre-activations
    /// cross ReLU's kink and switch their pixels' share of the gradient on or off).
    /// `scripts/rank-divergence.sh 2 3 8` on 2026-12-04: uniform, MoLA-Grad
    /// and every balancer at most 2.8e-6 apart after 2 steps; up to 5.9e-3 after 3 (MoLA-Grad,
    /// PCGrad, GradVac, UPGrad) and 0.34 after 8, under F(2×2) and F(4×4) alike.
    static let comparedSteps = 2

    /// The same config trained in one process (`one`) and under two ranks (`two`), one
    /// thread each, for `comparedSteps`; returns `largestDifference` of the two models.
    static func trainOnOneAndTwoRanks(_ tmp: TempDir, method: String, extra: String, dataset: String = TinyData.directory) throws -> Double {
        let one = TinyData.config(tmp, method: method, steps: comparedSteps, evalEvery: 1, extra: extra, output: "one", dataset: dataset)
        let two = TinyData.config(tmp, method: method, steps: comparedSteps, evalEvery: 1, extra: extra, output: "two", dataset: dataset)
        let r1 = try run(executable("mola-train"), ["run", one, "--quiet", "--set", "threads=1"])
        try #require(r1.status == 0, "\(r1.stderr)")
        let r2 = try mpirun(2, ["run", two, "--quiet", "--set", "threads=1"])
        try #require(r2.status == 0, "\(r2.stdout)")
        return try largestDifference(tmp.path + "/one", tmp.path + "/two")
    }

    /// The largest difference of any tensor of two runs' latest models, relative to that
    /// tensor's largest magnitude.
    static func largestDifference(_ one: String, _ two: String) throws -> Double {
        let (a, b) = (try weights(one), try weights(two))
        #expect(a.keys.sorted() == b.keys.sorted())
        var worst = 0.0
        for (name, va) in a {
            let scale = Double(va.map { abs($0) }.max() ?? 1) + 1e-3
            worst = max(worst, zip(va, b[name] ?? []).map { Double(abs($0 - $1)) / scale }.max() ?? 0)
        }
        return worst
    }

    /// With synchronised batch norm and no augmentation, two ranks each holding half of
    /// every batch train the same model as one process holding all of it.
    @Test func twoRanksTrainTheSameModelAsOne() throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let worst = try Self.trainOnOneAndTwoRanks(tmp, method: "mola-grad", extra: "sync_batchnorm: true\nlog_every: 1")
        // Float sums in another order (two halves, then the all-reduce): not bit-equal.
        #expect(worst < 1e-4, "largest difference relative to the tensor's scale: \(worst)")
        // The logged losses are those of the global batch.
        let lossesOne = metricsLines(tmp.path + "/one").compactMap { $0["loss"] as? Double }
        let lossesTwo = metricsLines(tmp.path + "/two").compactMap { $0["loss"] as? Double }
        #expect(lossesOne.count == Self.comparedSteps && lossesTwo.count == Self.comparedSteps)
        #expect(zip(lossesOne, lossesTwo).allSatisfy { abs($0 - $1) < 1e-4 * max(1, abs($0)) }, "\(lossesOne) vs \(lossesTwo)")
        let reportOne = try RunReport.read(tmp.path + "/one"), reportTwo = try RunReport.read(tmp.path + "/two")
        #expect(reportTwo.test.perTask.keys.sorted() == ["mnist", "optdigits"])
        #expect(abs(reportOne.test.average - reportTwo.test.average) < 1.0, "test split evaluated in halves and summed")
        // AUC needs every image's probabilities: the ranks' halves are gathered.
        let aucOne = try #require(reportOne.testAUCAverage), aucTwo = try #require(reportTwo.testAUCAverage)
        #expect(abs(aucOne - aucTwo) < 0.01, "\(aucOne) vs \(aucTwo)")
        let countOne: Int = reportOne.testMetrics?["mnist"]?.confusion.joined().reduce(0, +) ?? -1
        let countTwo: Int = reportTwo.testMetrics?["mnist"]?.confusion.joined().reduce(0, +) ?? -2
        #expect(countOne == countTwo && countOne > 0)
    }

    /// A multi-label task (ChestMNIST's format) beside a single-label one under two ranks:
    /// the per-label binary cross-entropy averaged over the ranks trains the model one
    /// process trains, and the ranks' gathered probabilities give the same per-label metrics.
    @Test func multiLabelTaskOnTwoRanksEqualsOne() throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let worst = try Self.trainOnOneAndTwoRanks(tmp, method: "mola-grad", extra: "sync_batchnorm: true", dataset: ChestData.directory)
        #expect(worst < 1e-4, "largest difference relative to the tensor's scale: \(worst)")
        let one = try #require(RunReport.read(tmp.path + "/one").testMetrics?["chest"])
        let two = try #require(RunReport.read(tmp.path + "/two").testMetrics?["chest"])
        #expect(two.isMultiLabel && two.labelConfusion?.count == 14)
        #expect(abs((one.auc ?? 0) - (two.auc ?? 1)) < 0.01, "\(String(describing: one.auc)) vs \(String(describing: two.auc))")
        let total = { (m: ClassificationMetrics) in m.labelConfusion!.map { $0.reduce(0, +) } }
        #expect(total(two) == Array(repeating: 96, count: 14) && total(one) == total(two), "every test image decided once per label")
    }

    /// Every balancer on two ranks trains the model one process trains: the gradient
    /// combiners see each task's gradient averaged over the ranks, the loss weightings the
    /// global batch's task losses (RLW draws from the step's stream, alike on every rank),
    /// and the task weights they log agree within 1e-6.
    @Test(arguments: Balancer.all.map(\.name))
    func everyBalancerOnTwoRanksEqualsOne(_ weighting: String) throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let worst = try Self.trainOnOneAndTwoRanks(tmp, method: "uniform", extra: "sync_batchnorm: true\nweighting: \(weighting)")
        #expect(worst < 1e-4, "\(weighting): largest difference relative to the tensor's scale: \(worst)")
        let w1 = metricsLines(tmp.path + "/one").compactMap { $0["task_weights"] as? [String: Double] }
        let w2 = metricsLines(tmp.path + "/two").compactMap { $0["task_weights"] as? [String: Double] }
        #expect(w1.count == w2.count && zip(w1, w2).allSatisfy { p in p.0.keys.allSatisfy { abs(p.0[$0]! - (p.1[$0] ?? .nan)) < 1e-6 } },
                "\(weighting): task weights \(w1) vs \(w2)")
    }

    /// rep_grad on two ranks trains the model one process trains: each rank sums its rows
    /// of each task's representation gradient, the vectors are averaged over the ranks, so
    /// every rank's combiner draws the one-process weights.
    @Test(arguments: ["mgda", "upgrad", "gradvac", "nash-mtl"])
    func repGradOnTwoRanksEqualsOne(_ weighting: String) throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let worst = try Self.trainOnOneAndTwoRanks(tmp, method: "mola-grad",
                                                   extra: "sync_batchnorm: true\nweighting: {name: \(weighting), rep_grad: true}")
        #expect(worst < 1e-4, "\(weighting) with rep_grad: largest difference relative to the tensor's scale: \(worst)")
    }

    /// Every method trains under two ranks: rank 0 writes the run, the ranks' weights are
    /// compared (by hash) at every evaluation, and the loss falls.
    @Test(arguments: ["uniform", "single-task", "mola-grad", "mola-router", "mmoe", "cgc", "ple", "dselect-k", "cross-stitch", "ltb", "hydra-lora"])
    func everyMethodTrainsOnTwoRanks(_ method: String) throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: method, steps: 24, evalEvery: 12)
        let r = try Self.mpirun(2, ["run", config, "--quiet", "--set", "threads=1"])
        try #require(r.status == 0, "\(r.stdout)")
        let dir = tmp.path + "/runs/" + method
        let report = try RunReport.read(dir)
        #expect(report.test.average > 20, "24 steps on digits should beat chance (10%) clearly: \(report.test.perTask)")
        let runs = method == "single-task" ? report.subRuns!.map { dir + "/" + $0 } : [dir]
        for run in runs {
            let validations = metricsLines(run).filter { $0["val_average"] != nil }
            #expect(validations.count == 2)
            #expect(validations.allSatisfy { ($0["ranks"] as? Int) == 2 && ($0["weights_fingerprint"] as? String)?.count == 16 }, "\(validations)")
            let losses = validations.compactMap { $0["train_loss"] as? Double }
            #expect(losses.last! < losses.first!, "\(losses)")
        }
    }

    /// Ranks whose weights part are stopped at the next evaluation, naming the rank.
    @Test func divergedWeightsStopTheRun() throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 8, evalEvery: 4)
        let r = try Self.mpirun(2, ["run", config, "--quiet", "--set", "threads=1"], extraEnvironment: "MOLA_TEST_PERTURB_RANK=1")
        #expect(r.status != 0)
        #expect(r.stdout.contains("the weights of rank 1 differ from rank 0's"), "\(r.stdout)")
    }

    /// A rank killed mid-run: mpirun ends the job non-zero naming the rank, the last
    /// checkpoint is whole, and `--resume` under two ranks finishes the run.
    @Test func killedRankEndsTheJobAndResumeFinishes() throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "mola-grad", steps: 400, evalEvery: 5)
        let dir = tmp.path + "/runs/mola-grad"
        let (job, out) = try Self.startMPIJob(2, ["run", config, "--quiet", "--set", "threads=1"])
        // Kill rank 1 once a checkpoint exists: its PID from the environment of mpirun's children.
        var rank1: Int32?
        for _ in 0..<600 where rank1 == nil {
            Thread.sleep(forTimeInterval: 0.05)
            guard FileManager.default.fileExists(atPath: dir + "/checkpoints/latest/state.json") else { continue }
            let ps = try run("bash", ["-c", "for p in $(pgrep -P \(job.processIdentifier)); do tr '\\0' '\\n' < /proc/$p/environ | grep -qx OMPI_COMM_WORLD_RANK=1 && echo $p; done"])
            rank1 = Int32(ps.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let victim = try #require(rank1, "rank 1 not found")
        kill(victim, SIGKILL)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        job.waitUntilExit()
        #expect(job.terminationStatus != 0)
        #expect(output.contains("rank 1"), "\(output)")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/latest/state.json"))) as! [String: Any]
        let step = state["step"] as! Int
        #expect(step > 0 && step < 400)
        _ = try Self.weights(dir)  // whole and readable
        let resumed = try Self.mpirun(2, ["run", config, "--quiet", "--resume", "--set", "threads=1"])
        #expect(resumed.status == 0, "\(resumed.stdout)")
        #expect(try RunReport.read(dir).steps == 400)
    }

    /// SIGTERM to mpirun reaches every rank; they agree on the step to stop at, rank 0
    /// checkpoints; resuming in one process says that the rank count changed.
    @Test func sigtermStopsAllRanksAndResumeOnOneSaysSo() throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 100_000, evalEvery: 100_000)
        let dir = tmp.path + "/runs/uniform"
        let (job, out) = try Self.startMPIJob(2, ["run", config, "--set", "threads=1"])
        Thread.sleep(forTimeInterval: 3)
        kill(job.processIdentifier, SIGTERM)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        job.waitUntilExit()
        #expect(job.terminationStatus != 0)
        #expect(output.contains("checkpoint saved"), "\(output)")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/latest/state.json"))) as! [String: Any]
        #expect((state["ranks"] as? Int) == 2 && (state["step"] as? Int ?? 0) > 0)
        let step = state["step"] as? Int ?? 0
        let r = try run("bash", ["-c", "MOLA_TEST_STOP_AFTER_STEPS=\(step + 3) '\(executable("mola-train"))' run '\(config)' --quiet --resume --set threads=1"])
        #expect(r.status == 130, "\(r.stderr)")
        #expect(r.stderr.contains("at step \(step) was written on 2 MPI rank(s); continuing on 1") && r.stderr.contains("sums over ranks run in another order"), "\(r.stderr)")
        let resumed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/latest/state.json"))) as! [String: Any]
        #expect(resumed["step"] as? Int == step + 3 && resumed["ranks"] == nil, "\(resumed)")
    }

    /// A run checkpointed under N ranks continues under M (2 → 1 and 1 → 2) to the model an
    /// uninterrupted one-process run trains, within the tolerance of two ranks against one,
    /// over as many steps as that comparison (`comparedSteps`).
    @Test(arguments: [(2, 1), (1, 2)])
    func resumeOnAnotherRankCount(_ before: Int, _ after: Int) throws {
        try Self.requireMPI()
        let tmp = TempDir()
        let extra = "sync_batchnorm: true"
        let (steps, stop) = (Self.comparedSteps, Self.comparedSteps / 2)
        let whole = TinyData.config(tmp, method: "mola-grad", steps: steps, evalEvery: 1, extra: extra, output: "whole")
        let split = TinyData.config(tmp, method: "mola-grad", steps: steps, evalEvery: 1, extra: extra, output: "split")
        let r = try run(executable("mola-train"), ["run", whole, "--quiet", "--set", "threads=1"])
        try #require(r.status == 0, "\(r.stderr)")
        let first = try Self.mpirun(before, ["run", split, "--quiet", "--set", "threads=1"], extraEnvironment: "MOLA_TEST_STOP_AFTER_STEPS=\(stop)")
        #expect(first.status != 0 && first.stdout.contains("interrupted"), "\(first.stdout)")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp.path + "/split/checkpoints/latest/state.json"))) as! [String: Any]
        #expect(state["step"] as? Int == stop && (state["ranks"] as? Int ?? 1) == before, "\(state)")
        let second = try Self.mpirun(after, ["run", split, "--quiet", "--resume", "--set", "threads=1"])
        #expect(second.status == 0, "\(second.stdout)")
        #expect(second.stdout.contains("was written on \(before) MPI rank(s); continuing on \(after)"), "\(second.stdout)")
        #expect(try RunReport.read(tmp.path + "/split").steps == steps)
        let worst = try Self.largestDifference(tmp.path + "/whole", tmp.path + "/split")
        #expect(worst < 1e-4, "\(before) → \(after) ranks: largest difference relative to the tensor's scale: \(worst)")
    }
}
