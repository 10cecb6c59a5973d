import ArgumentParser
import Foundation
import MoLAData
import MoLASupport
import MoLATensor

@main
struct MolaPrep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mola-prep",
        abstract: "Prepare image sets as compressed, checksummed tensor shards for mola-train.",
        discussion: """
            A manifest (data-manifests/*.yaml) names a dataset's tasks or domains and their \
            sources: PNG and JPEG folder trees, DICOM trees, NIfTI volumes, MedMNIST-style .npz \
            archives, IDX files and CSV pixel tables. `ingest` writes the dataset folder \
            (index.json and .npz shards that numpy.load opens as they are), whole or one part \
            of n at a time for a cluster (`--part i/n`, then `merge`); `inspect` summarises it; \
            `verify` checks it; `probe` reads single files the way ingest would.
            """,
        version: MoLAVersion.string,
        subcommands: [IngestCommand.self, MergeCommand.self, InspectCommand.self, VerifyCommand.self, ProbeCommand.self])
}

/// Runs `body`, printing our errors as `error: file: location: message` plus the fix,
/// and exiting with status 1 instead of a stack of Swift error text.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as any MoLAError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode.failure
    }
}

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Read the sources a manifest names and write the dataset's shards.",
        discussion: """
            Re-running with an unchanged manifest and unchanged input files does nothing \
            and says so. The dataset folder is replaced only once the new one is complete.

            With --part i/n (0 ≤ i < n) only part i of every source's records is decoded, \
            into DATASET.parts/part-i-of-n; the splits are decided over all records first, so \
            `mola-prep merge DATASET` after all n parts gives what one process would.

            Examples:
              mola-prep ingest data-manifests/digits-fashion.yaml
              mola-prep ingest data-manifests/radimagenet.yaml --part $SLURM_ARRAY_TASK_ID/16
            """)

    @Argument(help: "The manifest, e.g. data-manifests/digits-fashion.yaml.")
    var manifest: String

    @Option(help: "Dataset folder to write (default: datasets/<manifest name>).")
    var out: String?

    @Flag(help: "Skip records that cannot be read (bad PNG, bad CSV row, label outside the classes) instead of stopping; they are counted in the summary and index.json.")
    var skipBad = false

    @Flag(help: "Rebuild even when the dataset is up to date.")
    var force = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: "Only part i of n (0-based, e.g. 3/16): one task of a cluster array job; then `mola-prep merge`.")
    var part: String?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @Flag(help: "If another process is writing the same dataset folder, wait for it instead of stopping with its pid and host.")
    var wait = false

    func validate() throws {
        if let part, parsedPart(part) == nil {
            throw ValidationError("--part takes i/n with 0 ≤ i < n, e.g. --part 0/4 (got '\(part)')")
        }
    }

    func parsedPart(_ text: String) -> (index: Int, count: Int)? {
        let p = text.split(separator: "/").compactMap { Int($0) }
        guard p.count == 2, p[1] >= 1, (0..<p[1]).contains(p[0]) else { return nil }
        return (p[0], p[1])
    }

    func run() throws {
        try reportingErrors {
            let m = try Manifest(path: manifest)
            let output = out ?? Ingest.defaultOutput(for: m)
            var options = Ingest.Options(output: output, skipBad: skipBad, force: force, progress: !quiet, part: part.flatMap(parsedPart),
                                         threads: threads ?? Parallel.cores)
            options.contention = .fromFlag(wait: wait, target: output)
            let result = try Ingest(manifest: m, options: options).run()
            let relative = output.hasPrefix("/") ? result.directory : output
            if result.upToDate {
                print("\(relative) is up to date (\(result.images) images; manifest and inputs unchanged)")
                return
            }
            let ix = result.index
            let splits = Split.allCases.compactMap { s in ix.split(s).map { "\(s.rawValue) \($0.count)" } }.joined(separator: ", ")
            let bytes = ix.shards.reduce(0) { $0 + $1.bytes }, raw = ix.shards.reduce(0) { $0 + $1.rawBytes }
            print(String(format: "wrote %@: %d images (%@) in %d shard(s), %.1f MiB (ratio %.2f) in %.2f s, %.0f images/s",
                         relative, result.images, splits, ix.shards.count, Double(bytes) / 1_048_576,
                         Double(raw) / Double(max(bytes, 1)), result.seconds, Double(result.images) / result.seconds))
            if ix.skipped.count > 0 {
                print("skipped \(ix.skipped.count) bad record(s):")
                for r in ix.skipped.records.prefix(10) { print("  " + r.replacingOccurrences(of: "\n", with: "\n  ")) }
                if ix.skipped.count > 10 { print("  … (all listed in \(relative)/index.json)") }
            }
        }
    }
}

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the parts of a partitioned ingest into the dataset folder.",
        discussion: """
            Checks that DATASET.parts holds every part i/n once, all from the same manifest \
            and inputs, then writes DATASET (index.json and the parts' shards, hard-linked). \
            A missing part is named, so a failed array task can be re-run alone.

            Example:
              mola-prep merge datasets/radimagenet
            """)

    @Argument(help: "The dataset folder the parts were ingested for (their folder is DATASET.parts).")
    var dataset: String

    @Flag(help: "If another process is writing the dataset folder, wait for it instead of stopping with its pid and host.")
    var wait = false

    func run() throws {
        try reportingErrors {
            let r = try Ingest.merge(directory: dataset, contention: .fromFlag(wait: wait, target: dataset))
            let splits = Split.allCases.compactMap { s in r.index.split(s).map { "\(s.rawValue) \($0.count)" } }.joined(separator: ", ")
            print("merged \(dataset): \(r.images) images (\(splits)) in \(r.index.shards.count) shard(s)")
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Summarise a dataset: counts per split, task and class; shape; bytes; compression.",
        discussion: """
            Example:
              mola-prep inspect datasets/digits-fashion --contact-sheet sheet.png
            """)

    @Argument(help: "A dataset folder written by `mola-prep ingest`.")
    var dataset: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "Write a PNG grid of samples (one row per task) to this path.")
    var contactSheet: String?

    @Option(help: "Split the contact sheet samples from.")
    var split: String = "train"

    @Option(help: "Samples per row of the contact sheet.")
    var perRow: Int = 12

    func run() throws {
        try reportingErrors {
            let reader = try DatasetReader(directory: dataset)
            let summary = DatasetSummary(reader.index, directory: reader.directory)
            if json {
                let e = JSONEncoder()
                e.keyEncodingStrategy = .convertToSnakeCase
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try e.encode(summary), as: UTF8.self))
            } else {
                print(summary.text(index: reader.index), terminator: "")
            }
            if let contactSheet {
                guard let s = Split(rawValue: split) else {
                    throw DataError(file: dataset, "unknown split '\(split)'", fix: "use train, val or test")
                }
                try ContactSheet.write(try reader.load(s), index: reader.index, perRow: perRow, to: contactSheet)
                if !json { print("contact sheet: \(contactSheet)") }
            }
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash every shard, decode every record and check counts against index.json.",
        discussion: "Exits with status 1 and names each bad shard when anything disagrees.")

    @Argument(help: "A dataset folder written by `mola-prep ingest`.")
    var dataset: String

    func run() throws {
        try reportingErrors {
            let report = try DatasetVerifier.verify(directory: dataset)
            for p in report.problems { FileHandle.standardError.write(Data("error: \(p)\n".utf8)) }
            guard report.ok else {
                FileHandle.standardError.write(Data("verify failed: \(report.problems.count) problem(s) in \(dataset)\n".utf8))
                throw ExitCode.failure
            }
            print("ok: \(report.shards) shard(s), \(report.records) records verified in \(dataset)")
        }
    }
}

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Read files with the reader ingest uses and say what each holds, or what is wrong with it.",
        discussion: """
            The format comes from the name (.png, .jpg, .dcm, .nii[.gz], .npy, .npz, .zip, \
            .gz, *idx*ubyte[.gz], .csv[.gz], .safetensors, index.json, .yaml), or from \
            --format. A damaged file gets the error ingest would give it, fast: readers check \
            what a header declares against the bytes that are there before they allocate.
            Exit status 1 when any file cannot be read.

            Examples:
              mola-prep probe scans/case1.dcm scans/case2.nii.gz
              mola-prep probe --format dicom scans/IM0001
            """)

    @Argument(help: "The files.")
    var files: [String]

    @Option(help: "The format: \(FileProbe.Format.allCases.map(\.rawValue).joined(separator: ", ")) (default: from each name).")
    var format: String?

    func run() throws {
        let given = try format.map { name in
            guard let f = FileProbe.Format(rawValue: name) else {
                throw ValidationError("unknown format '\(name)': use \(FileProbe.Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return f
        }
        var failed = false
        for file in files {
            do {
                guard let f = given ?? FileProbe.Format.guess(file) else {
                    throw DataError(file: file, "cannot tell the format from the name", fix: "give it with --format")
                }
                print("\(file): \(try FileProbe.read(file, as: f))")
            } catch let e as any MoLAError {
                FileHandle.standardError.write(Data("error: \(e)\n".utf8))
                failed = true
            }
        }
        if failed { throw ExitCode.failure }
    }
}
