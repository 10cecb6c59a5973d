import ArgumentParser
import Foundation
import MoLAPipeline
import MoLASupport

@main
struct MolaPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mola-pipeline",
        abstract: "Rerun whole experiments make-style: only the stages whose inputs changed.",
        discussion: """
            A pipeline (pipelines/*.yaml) lists stages with a command, deps, params and outs. \
            Staleness is decided by content: the hashes of deps and outs, the command line, the \
            parameter values a stage reads and the tool version, compared with <file>.lock.
            """,
        version: MoLAVersion.string,
        subcommands: [RunCommand.self, StatusCommand.self, DagCommand.self, ExportMakeCommand.self])
}

func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as any MoLAError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode.failure
    }
}

/// `--set key=value` pairs for the parameters file.
func parseOverrides(_ list: [String]) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in list {
        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw ValidationError("--set expects key=value, got '\(item)'") }
        out[parts[0]] = parts[1]
    }
    return out
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the stale stages (and everything downstream), in dependency order.",
        discussion: """
            Examples:
              mola-pipeline run pipelines/quickstart.yaml
              mola-pipeline run pipelines/digits-fashion.yaml train -j 2
              mola-pipeline run pipelines/quickstart.yaml --set quickstart.epochs=1 --dry-run
            """)

    @Argument(help: "The pipeline file.")
    var file: String

    @Argument(help: "Stages to bring up to date (with what they need); default all. A foreach name selects all its items.")
    var stages: [String] = []

    @Flag(help: "Only list each stage as up to date or stale, with the reason.")
    var dryRun = false

    @Option(help: "Rerun this stage even if up to date (repeatable).")
    var force: [String] = []

    @Option(name: .short, help: "Independent stages to run at once.")
    var jobs: Int = 1

    @Option(name: .customLong("set"), help: "Override a value of the parameters file: key=value (repeatable).")
    var overrides: [String] = []

    @Flag(help: "If another `mola-pipeline run` of this pipeline is running, wait for it instead of stopping with its pid and host.")
    var wait = false

    func run() throws {
        try reportingErrors {
            let p = try Pipeline.load(file, overrides: try parseOverrides(overrides))
            let runner = try PipelineRunner(p)
            if dryRun {
                for (name, st) in try runner.plan(targets: stages, force: Set(force)) { print("\(name): \(st.text)") }
                return
            }
            let start = Date()
            let s = try runner.run(targets: stages, force: Set(force), jobs: jobs, contention: .fromFlag(wait: wait, target: file))
            if s.ran.isEmpty {
                print("everything is up to date (\(s.upToDate.count) stages, \(String(format: "%.2f", Date().timeIntervalSince(start))) s)")
            } else {
                print("ran \(s.ran.count) stage(s): \(s.ran.joined(separator: ", ")); \(s.upToDate.count) up to date")
            }
            if let last = p.order.last, let out = p.stages[last].outs.first { print("outputs of \(p.stages[last].name): \(p.root)/\(out)") }
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Each stage: up to date, or stale and why (same as run --dry-run).")

    @Argument(help: "The pipeline file.")
    var file: String

    @Option(name: .customLong("set"), help: "Override a value of the parameters file: key=value.")
    var overrides: [String] = []

    func run() throws {
        try reportingErrors {
            let runner = try PipelineRunner(try Pipeline.load(file, overrides: try parseOverrides(overrides)))
            for (name, st) in try runner.plan() { print("\(name): \(st.text)") }
        }
    }
}

struct DagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dag", abstract: "Print the stage graph (text, or --dot for Graphviz).")

    @Argument(help: "The pipeline file.")
    var file: String

    @Flag(help: "Graphviz DOT instead of text.")
    var dot = false

    func run() throws {
        try reportingErrors {
            let p = try Pipeline.load(file)
            print(dot ? p.dot : p.dagText, terminator: "")
        }
    }
}

struct ExportMakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export-make", abstract: "Write a Makefile for the same graph (make decides by file times).")

    @Argument(help: "The pipeline file.")
    var file: String

    @Option(name: .shortAndLong, help: "Output file (default: standard output).")
    var output: String?

    func run() throws {
        try reportingErrors {
            let m = try Pipeline.load(file).makefile
            if let output { try FileIO.writeAtomically(m, to: output) } else { print(m, terminator: "") }
        }
    }
}
