import ArgumentParser
import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor
import MoLATrain

@main
struct MolaTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mola-train",
        abstract: "Train MoLA-Grad, MoLA-Router and baselines on prepared datasets; evaluate and compare runs.",
        discussion: """
            A config (configs/*.yaml) names the data (a manifest or a dataset folder), the tasks, \
            the method, a gradient balancer, the backbone, adapters, optimiser and schedule. `run` \
            writes runs/<name>/ with checkpoints, metrics.jsonl, report.md/json/html and SVG plots; \
            `compare` tabulates several runs.

            Methods (`method:`):
            \(Method.helpList)

            Gradient balancers (`weighting:`, for \(Method.all.filter(\.takesBalancer).map(\.name).joined(separator: ", "))):
            \(Balancer.helpList)
            """,
        version: MoLAVersion.string,
        subcommands: [RunCommand.self, CompareCommand.self, EvalCommand.self, PredictCommand.self, BenchCommand.self, RunsCommand.self, ExportCommand.self])
}

/// Our errors as one `error: …` line plus the fix, exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as any MoLAError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode.failure
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train the model a config describes, then evaluate it and write the report.",
        discussion: """
            The dataset is ingested first when the config names a manifest whose dataset is \
            missing or stale. Validation picks the best checkpoint; test is evaluated once, at \
            the end. Ctrl-C (or SIGTERM) saves a checkpoint and exits; --resume continues it \
            and reaches the same numbers as an uninterrupted run with the same thread count.

            Examples:
              mola-train run configs/digits-fashion/mola-grad.yaml
              mola-train run configs/digits-fashion/uniform.yaml --set epochs=1 --set seed=2 --set name=uniform-s2
              mpirun -np 4 mola-train run configs/medmnist/mola-grad.yaml   # data-parallel over 4 processes

            Under mpirun (N > 1 ranks; OpenMPI's libmpi is loaded at run time) each rank \
            trains on 1/N of every global batch (batch_size stays the global size), gradients \
            are averaged each step, and rank 0 alone writes the run folder. `sync_batchnorm: \
            true` normalises over the global batch. The run folder and dataset must be on a \
            filesystem every rank sees.
            """)

    @Argument(help: "The training config (YAML).")
    var config: String

    @Flag(help: "Continue the run in its output folder from its latest checkpoint.")
    var resume = false

    @Flag(help: "Delete the run's output folder first and start over.")
    var fresh = false

    @Option(name: .customLong("set"), help: "Override any config key by its path, value as YAML: --set adapters.rank=8, --set backbone.widths=[16,32,64], --set optimizer.name=adamw (repeatable; lr and alpha are short for optimizer.lr and adapters.alpha).")
    var overrides: [String] = []

    @Flag(name: .shortAndLong, help: "No progress bar or per-evaluation lines.")
    var quiet = false

    @Flag(help: "If another process is training into the same run folder, wait for it instead of stopping with its pid and host.")
    var wait = false

    func run() throws {
        try reportingErrors {
            StopSignals.install()
            // Under `mpirun -np N` (N > 1) this process is one rank of a data-parallel run.
            let mpi = try MPI.startIfLaunched()
            var r = TrainingRun(configFile: config)
            r.overrides = overrides
            r.resume = resume
            r.fresh = fresh
            r.progress = !quiet
            // For the tests of resuming: stop as if signalled before this step.
            r.stopAfterSteps = ProcessInfo.processInfo.environment["MOLA_TEST_STOP_AFTER_STEPS"].flatMap { Int($0) }
            r.contention = .fromFlag(wait: wait, target: "the run folder of \(config)", stop: { StopSignals.requested })
            if let mpi {
                r.parallel = DataParallel(mpi)
                if mpi.rank != 0 { r.log = { _ in } }
            }
            let outcome: Trainer.Outcome, dir: String
            do { (outcome, dir) = try r.run() } catch {
                // No MPI_Finalize: the other ranks wait in a collective; exiting non-zero
                // makes mpirun end the job, naming this rank.
                if let mpi { FileHandle.standardError.write(Data("rank \(mpi.rank) of \(mpi.size): ".utf8)) }
                throw error
            }
            mpi?.finalize()
            guard (mpi?.rank ?? 0) == 0 else { throw outcome == .interrupted ? ExitCode(130) : ExitCode.success }
            if outcome == .interrupted {
                let launcher = mpi.map { "mpirun -np \($0.size) " } ?? ""
                FileHandle.standardError.write(Data("interrupted; resume with: \(launcher)mola-train run \(config) --resume\n".utf8))
                throw ExitCode(130)
            }
            print(dir + "/report.md")
        }
    }
}

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Tabulate finished runs like the paper: methods × tasks, mean ± std over seeds.",
        discussion: """
            With --page it also writes a results page for the docs: how the runs were made \
            (the command that made them, data, shared settings, machine, dates), the table and \
            its figure, in a folder beside the page. Run from a pipeline's stage, the page \
            names the pipeline as what made it, so rerunning the pipeline refreshes it.

            Examples:
              mola-train compare runs/df-* --out runs/compare
              mola-train compare runs/dd/* --page docs/results/digit-domains.md --title "digit-domains: every method"
            """)

    @Argument(help: "Run folders (each with report.json).")
    var runs: [String]

    @Option(help: "Folder for compare.md, compare.html, compare.json and the plots (default: print only).")
    var out: String?

    @Option(help: "A Markdown results page to write (its figure goes to the folder of the page's name beside it).")
    var page: String?

    @Option(help: "The page's title (default: the data set's name).")
    var title: String?

    func run() throws {
        try reportingErrors {
            let c = try Comparison.of(runs: runs)
            print(c.markdown)
            if let out {
                try c.write(to: out)
                FileHandle.standardError.write(Data("wrote \(out)/compare.md, compare.html and compare.json\n".utf8))
            }
            if let page {
                // mola-pipeline names its pipeline in the environment of the stages it runs.
                let pipeline = ProcessInfo.processInfo.environment["MOLA_PIPELINE_FILE"]
                let madeBy = pipeline.map { "mola-pipeline run \($0)" } ?? (["mola-train"] + CommandLine.arguments.dropFirst().map(Self.shellWord)).joined(separator: " ")
                let dataset = URL(fileURLWithPath: try RunReport.read(runs[0]).dataset).lastPathComponent
                try c.writePage(to: page, title: title ?? "Results: \(dataset)", madeBy: madeBy)
                FileHandle.standardError.write(Data("wrote \(page)\n".utf8))
            }
        }
    }

    /// A command-line word as a shell reads it back.
    static func shellWord(_ w: String) -> String {
        w.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@+".contains($0) } && !w.isEmpty ? w : "'" + w.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a run's best checkpoint as torchvision state dicts (one model per task, adapters folded in).",
        discussion: """
            Each <task>.safetensors holds a plain torchvision ResNet for that task: W + ΔW_t \
            folded into every adapted convolution (MoLA-Grad), the task's batch-norm \
            statistics, its head as fc. A uniform run with shared batch norm also gets \
            backbone.safetensors (no fc). Load them in PyTorch with safetensors' load_file and \
            model.load_state_dict(..., strict=False) (no num_batches_tracked). Uniform and \
            Runs of \(Method.all.filter { $0.export != nil }.map(\.name).joined(separator: ", ")) only.

            Example:
              mola-train export runs/df-mola-grad --torchvision exported/df-mola-grad
            """)

    @Argument(help: "The run folder.")
    var runFolder: String

    @Option(help: "Folder for the torchvision state dicts.")
    var torchvision: String

    func run() throws {
        try reportingErrors {
            for file in try TorchvisionExport.export(run: runFolder, to: torchvision) { print(file) }
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a run's checkpoint on a prepared dataset (tasks matched by name).",
        discussion: """
            Example:
              mola-train eval runs/df-mola-grad datasets/digits-fashion --split test
            """)

    @Argument(help: "The run folder.")
    var runFolder: String

    @Argument(help: "A dataset folder written by mola-prep ingest.")
    var dataset: String

    @Option(help: "Split to evaluate: train, val or test.")
    var split: String = "test"

    @Option(help: "Checkpoint: best or latest.")
    var checkpoint: String = "best"

    func run() throws {
        try reportingErrors {
            guard let s = Split(rawValue: split) else { throw ValidationError("--split must be train, val or test") }
            guard ["best", "latest"].contains(checkpoint) else { throw ValidationError("--checkpoint must be best or latest") }
            let results = try Evaluator.evaluate(run: runFolder, dataset: dataset, split: s, checkpoint: checkpoint)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict new images with a run's model: one CSV row per image, DICOM frame or NIfTI slice.",
        discussion: """
            Each input (PNG, JPEG, DICOM, NIfTI, or a folder of them) is prepared exactly as \
            mola-prep ingest prepared the run's dataset: its size, channels and resize filter, and \
            the DICOM window, frame and NIfTI slice settings of the task's sources, read from the \
            dataset's manifest copy. The CSV has source, position (frame or slice), task, \
            predicted class and every class's probability (p_<class>).

            A dataset folder (written by mola-prep ingest) as input predicts its --split \
            (test by default) and adds each record's true class in a truth column. A \
            multi-label task's predicted labels are those with probability above 0.5, joined by |.

            Examples:
              mola-train predict runs/df-mola-grad new-scans/ --out predictions.csv
              mola-train predict runs/med-mola-router ct.dcm --task organ
              mola-train predict runs/df-mola-grad datasets/digits-fashion --split val
            """)

    @Argument(help: "The run folder.")
    var runFolder: String

    @Argument(help: "Image files or folders (PNG, JPEG, DICOM, NIfTI), or dataset folders.")
    var inputs: [String]

    @Option(help: "The split of a dataset folder input to predict: train, val or test.")
    var split: String = "test"

    @Option(help: "Predict this task only (default: every task of the run).")
    var task: String?

    @Option(help: "CSV file to write (default: standard output).")
    var out: String?

    @Option(help: "The dataset folder whose manifest says how to prepare images (default: the run's).")
    var dataset: String?

    @Option(help: "Checkpoint: best or latest.")
    var checkpoint: String = "best"

    @Flag(help: "Skip images that cannot be read instead of stopping; they are listed on standard error.")
    var skipBad = false

    func run() throws {
        try reportingErrors {
            guard ["best", "latest"].contains(checkpoint) else { throw ValidationError("--checkpoint must be best or latest") }
            guard let s = Split(rawValue: split) else { throw ValidationError("--split must be train, val or test") }
            let r = try Prediction.run(runDirectory: runFolder, inputs: inputs, task: task, dataset: dataset, split: s, checkpoint: checkpoint,
                                       skipBad: skipBad)
            if let out { try FileIO.writeAtomically(r.csv, to: out) } else { print(r.csv, terminator: "") }
            if !r.skipped.isEmpty {
                FileHandle.standardError.write(Data("skipped \(r.skipped.count) unreadable image(s):\n".utf8))
                for s in r.skipped.prefix(10) { FileHandle.standardError.write(Data("  \(s)\n".utf8)) }
            }
            if let out { FileHandle.standardError.write(Data("wrote \(out): \(r.rows.count) row(s)\n".utf8)) }
        }
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time train steps of a config's model on its data; prints one JSON object.",
        discussion: """
            Examples:
              mola-train bench configs/digits-fashion/mola-grad.yaml --threads 2
              mpirun -np 2 mola-train bench configs/digits-fashion/mola-grad.yaml --threads 1   # data-parallel: adds allreduce_ms
            """)

    @Argument(help: "The training config.")
    var config: String

    @Option(help: "Timed steps per round.")
    var steps: Int = 20

    @Option(help: "Rounds (best kept; this machine's timing is noisy).")
    var rounds: Int = 3

    @Option(help: "Worker threads (default: the config's, else all cores).")
    var threads: Int?

    @Option(name: .customLong("set"), help: "Override any config key, as for `run` (repeatable).")
    var overrides: [String] = []

    func run() throws {
        try reportingErrors {
            var overrides = self.overrides
            if let threads { overrides.append("threads=\(threads)") }
            let mpi = try MPI.startIfLaunched()
            let r = try TrainBench.run(configFile: config, overrides: overrides, steps: steps, rounds: rounds, parallel: mpi.map(DataParallel.init))
            mpi?.finalize()
            guard (mpi?.rank ?? 0) == 0 else { return }
            let data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "One row per run under a folder: method, data, the settings that differ, status, steps, best validation, test average.",
        discussion: """
            Status is finished (a report), running (its process is alive) or interrupted \
            (a checkpoint to --resume). Examples:
              mola-train runs
              mola-train runs runs/quickstart --only-changed
              mola-train runs --json
            """)

    @Argument(help: "The folder the runs are in.")
    var directory: String = "runs"

    @Flag(help: "Show only the settings that differ between the runs.")
    var onlyChanged = false

    @Flag(help: "Print JSON (every setting of every run) instead of the table.")
    var json = false

    func run() throws {
        try reportingErrors {
            let rows = try RunsTable.scan(directory)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(rows), as: UTF8.self))
            } else if rows.isEmpty {
                print("no runs under \(directory)")
            } else {
                print(RunsTable.render(rows, onlyChanged: onlyChanged), terminator: "")
            }
        }
    }
}

