import Foundation
import MoLAData
import MoLASupport

/// A mutation fuzzer over every reader mola-prep has, seeded with real files
/// (scripts/make-damaged-files.py writes them: pydicom's, nibabel's, scikit-learn's, numpy
/// arrays, our formats).
///
/// A supervisor starts a worker process; the worker mutates seeds (bit flips, interesting
/// integers at random offsets, cuts, deletions, duplications, splices) and reads each
/// mutant with `FileProbe`, the readers ingest uses, under an address-space cap, with an
/// alarm per input. A reader may only answer with one of our errors: a crash, a trap, an
/// allocation past the cap (the process dies), a hang past the alarm, or another kind of
/// error is a finding. The worker writes each input to `current.*` before reading it, so
/// when it dies the supervisor keeps that input under findings/ and starts a new worker.
///
///     mola-fuzz SEEDS --seconds 120 --out Fuzz/out        # CI
///     mola-fuzz SEEDS --seconds 36000 --out Fuzz/out      # an evening
///     mola-fuzz --replay Tests/Fixtures/fuzz-regressions  # every kept finding, once
///
/// Exit status 1 when there are findings (each then belongs in Tests/Fixtures/
/// fuzz-regressions/ with its fix).
struct Options {
    var seeds = ""
    var seconds = 60.0
    var out = "Fuzz/out"
    var memoryMB = 1024
    var seed: UInt64 = 1
    var worker = false
    var replay: String?

    init(_ args: [String]) {
        var it = args.dropFirst().makeIterator()
        while let a = it.next() {
            switch a {
            case "--seconds": seconds = Double(it.next() ?? "") ?? seconds
            case "--out": out = it.next() ?? out
            case "--memory-mb": memoryMB = Int(it.next() ?? "") ?? memoryMB
            case "--seed": seed = UInt64(it.next() ?? "") ?? seed
            case "--worker": worker = true
            case "--replay": replay = it.next()
            case "-h", "--help":
                print("usage: mola-fuzz SEEDS_DIR [--seconds S] [--out DIR] [--memory-mb M] [--seed N] | mola-fuzz --replay DIR")
                exit(0)
            default: seeds = a
            }
        }
    }
}

struct Seed {
    var format: FileProbe.Format
    var bytes: [UInt8]
}

/// The good files of a seed folder (cases.json), by format.
func loadSeeds(_ dir: String) -> [Seed] {
    struct Case: Decodable { var file: String; var format: String; var kind: String }
    guard let data = FileManager.default.contents(atPath: dir + "/cases.json"),
          let cases = try? JSONDecoder().decode([Case].self, from: data) else {
        FileHandle.standardError.write(Data("mola-fuzz: no \(dir)/cases.json (make it with scripts/make-damaged-files.py \(dir))\n".utf8))
        exit(2)
    }
    return cases.filter { $0.kind == "good" }.compactMap { c in
        guard let f = FileProbe.Format(rawValue: c.format), let b = FileManager.default.contents(atPath: dir + "/" + c.file) else { return nil }
        return Seed(format: f, bytes: [UInt8](b))
    }
}

/// One to four mutations of `input`.
func mutate(_ input: [UInt8], other: [UInt8], rng: inout RandomGenerator) -> [UInt8] {
    var b = input
    let interesting: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFF0]
    for _ in 0..<(1 + rng.nextInt(below: 4)) {
        if b.isEmpty { b = [UInt8(rng.nextInt(below: 256))] }
        let at = rng.nextInt(below: b.count)
        switch rng.nextInt(below: 8) {
        case 0: b[at] ^= UInt8(1 << rng.nextInt(below: 8))
        case 1: b[at] = UInt8(rng.nextInt(below: 256))
        case 2:  // an interesting integer, 2 or 4 bytes, either byte order; headers live early
            let pos = rng.nextInt(below: 2) == 0 ? rng.nextInt(below: min(b.count, 1024)) : at
            let v = interesting[rng.nextInt(below: interesting.count)]
            let width = rng.nextInt(below: 2) == 0 ? 2 : 4, big = rng.nextInt(below: 2) == 0
            for k in 0..<width where pos + k < b.count {
                let shift = 8 * (big ? width - 1 - k : k)
                b[pos + k] = UInt8(truncatingIfNeeded: v >> shift)
            }
        case 3: b = Array(b.prefix(at))
        case 4: b.removeSubrange(at..<min(b.count, at + 1 + rng.nextInt(below: 64)))
        case 5:
            let chunk = b[at..<min(b.count, at + 1 + rng.nextInt(below: 256))]
            b.insert(contentsOf: chunk, at: rng.nextInt(below: b.count + 1))
        case 6: b.insert(contentsOf: (0..<(1 + rng.nextInt(below: 16))).map { _ in UInt8(rng.nextInt(below: 256)) }, at: at)
        default:  // splice: this one's head, another's tail
            if !other.isEmpty { b = Array(b.prefix(at)) + other.suffix(other.count - rng.nextInt(below: other.count)) }
        }
    }
    return b
}

/// Reads one input; nil when the reader behaved (read it, or gave one of our errors).
func probe(_ path: String, _ format: FileProbe.Format) -> String? {
    do { _ = try FileProbe.read(path, as: format); return nil } catch is any MoLAError { return nil } catch {
        return "not one of our errors: \(type(of: error)): \(error)"
    }
}

/// Caps the address space: an allocation sized by damage, not by the file, kills the process.
func capMemory(_ megabytes: Int) {
    var limit = rlimit(rlim_cur: rlim_t(megabytes) << 20, rlim_max: rlim_t(megabytes) << 20)
    setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
}

func worker(_ o: Options) {
    capMemory(o.memoryMB)
    let seeds = loadSeeds(o.seeds)
    if seeds.isEmpty {
        FileHandle.standardError.write(Data("mola-fuzz: \(o.seeds)/cases.json lists no good files to mutate\n".utf8))
        exit(2)
    }
    var rng = RandomGenerator(seed: o.seed)
    let deadline = Date().addingTimeInterval(o.seconds)
    var executions = 0
    while Date() < deadline {
        let s = seeds[executions % seeds.count]
        let same = seeds.filter { $0.format == s.format }
        let input = mutate(s.bytes, other: same[rng.nextInt(below: same.count)].bytes, rng: &rng)
        let path = o.out + "/current.input"
        _ = FileManager.default.createFile(atPath: path, contents: Data(input))
        try? s.format.rawValue.write(toFile: o.out + "/current.format", atomically: false, encoding: .utf8)
        alarm(2)  // a hang ends the worker (SIGALRM): the supervisor keeps the input
        if let finding = probe(path, s.format) {
            FileHandle.standardError.write(Data("finding: \(finding)\n".utf8))
            exit(3)
        }
        alarm(0)
        executions += 1
        if executions % 200 == 0 { try? "\(executions)".write(toFile: o.out + "/executions", atomically: true, encoding: .utf8) }
    }
    try? "\(executions)".write(toFile: o.out + "/executions", atomically: true, encoding: .utf8)
    exit(0)
}

func supervise(_ o: Options) -> Int32 {
    try? FileManager.default.createDirectory(atPath: o.out + "/findings", withIntermediateDirectories: true)
    let start = Date()
    var total = 0, findings: [String] = [], restarts = 0
    while Date().timeIntervalSince(start) < o.seconds {
        let left = o.seconds - Date().timeIntervalSince(start)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        p.arguments = [o.seeds, "--worker", "--seconds", "\(left)", "--out", o.out, "--memory-mb", "\(o.memoryMB)",
                       "--seed", "\(o.seed &+ UInt64(restarts) &* 7919)"]
        try? FileManager.default.removeItem(atPath: o.out + "/executions")
        try? FileManager.default.removeItem(atPath: o.out + "/current.input")  // not this worker's: never a finding
        do { try p.run() } catch { print("mola-fuzz: cannot start a worker: \(error)"); return 2 }
        p.waitUntilExit()
        total += Int((try? String(contentsOfFile: o.out + "/executions", encoding: .utf8)) ?? "0") ?? 0
        if p.terminationReason == .exit && p.terminationStatus == 0 { break }
        if p.terminationReason == .exit && p.terminationStatus == 2 { return 2 }  // no seeds: nothing to run
        let why = p.terminationReason == .uncaughtSignal ? (p.terminationStatus == SIGALRM ? "hang" : "signal-\(p.terminationStatus)")
            : "exit-\(p.terminationStatus)"
        if FileManager.default.fileExists(atPath: o.out + "/current.input") {
            let format = (try? String(contentsOfFile: o.out + "/current.format", encoding: .utf8)) ?? "?"
            let kept = o.out + "/findings/\(why)-\(findings.count)-\(format)-input"
            try? FileManager.default.removeItem(atPath: kept)
            try? FileManager.default.copyItem(atPath: o.out + "/current.input", toPath: kept)
            findings.append(kept)
            print("finding: \(why) reading \(kept)")
        }
        restarts += 1
    }
    let line = ["executions": total, "findings": findings.count, "seconds": Int(Date().timeIntervalSince(start)), "workers": restarts + 1]
    print(String(decoding: try! JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    return findings.isEmpty ? 0 : 1
}

/// Reads every file of a folder of kept findings (named `…-FORMAT-input`) once, under the
/// same address-space cap as the fuzzer.
func replay(_ dir: String, memoryMB: Int) -> Int32 {
    capMemory(memoryMB)
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted()
    var bad = 0
    for f in files {
        guard let format = FileProbe.Format.allCases.first(where: { f.contains("-\($0.rawValue)-") }) else {
            print("\(f): the name does not say its format (…-FORMAT-input, FORMAT one of \(FileProbe.Format.allCases.map(\.rawValue)))")
            bad += 1
            continue
        }
        if let finding = probe(dir + "/" + f, format) { print("\(f): \(finding)"); bad += 1 } else { print("\(f): ok") }
    }
    print("replayed \(files.count) kept findings, \(bad) bad")
    return bad == 0 && !files.isEmpty ? 0 : 1
}

let options = Options(CommandLine.arguments)
if let dir = options.replay { exit(replay(dir, memoryMB: options.memoryMB)) }
if options.worker { worker(options) }
try? FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
exit(supervise(options))
