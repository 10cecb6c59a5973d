import ArgumentParser
import Foundation
import MoLAModel
import MoLASupport
import MoLATensor
import MoLATrain

/// Train steps/s of a ResNet under uniform or MoLA-Grad training, next to the identical
/// network in PyTorch CPU (`Benchmarks/reference/train_step_reference.py`) when torch is
/// installed, rounds interleaved: eager in PyTorch's default layout and in channels_last
/// (oneDNN's), and with `--compile-peer` torch.compile; the speed-up is against the best of
/// them. `--profile` adds where the time goes, per op kind, at 1 thread and at `--threads`.
struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step", abstract: "Train steps of resnet-mini or ResNet-18 vs PyTorch CPU, images/s.",
        discussion: """
            Defaults: resnet-mini, 28×28×1, 4 tasks, MoLA-Grad with rank-4 adapters. The \
            paper's MedMNIST network: --backbone resnet18 --side 28 --channels 3 --tasks 9 \
            (rank 8, the stem and every 3×3 block conv adapted under mola-grad).
            """)

    enum Backbone: String, ExpressibleByArgument, CaseIterable { case resnetMini = "resnet-mini", resnet18 }

    @Option(help: "Network: \(Backbone.allCases.map(\.rawValue).joined(separator: ", ")).")
    var backbone: Backbone = .resnetMini

    @Option(help: "Image side in pixels.")
    var side: Int = 28

    @Option(help: "Image channels.")
    var channels: Int = 1

    @Option(help: "Tasks (task groups of equal size in the batch, one head each).")
    var tasks: Int = 4

    @Option(help: "Any method of `mola-train --help` (the PyTorch reference has uniform and mola-grad).")
    var method: String = Method.molaGrad.name

    @Option(help: "Adapter rank (default: 4 for resnet-mini, 8 for resnet18).")
    var rank: Int?

    @Option(help: "Worker threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Images per batch.")
    var batch: Int = 128

    @Option(help: "Steps per timed round.")
    var steps: Int = 20

    @Option(help: "Timed rounds (best kept), alternating with the reference.")
    var rounds: Int = 5

    @Flag(help: "Skip the PyTorch reference.")
    var noReference = false

    @Flag(help: "Also time torch.compile on channels_last, in one process after the interleaved rounds (its compilation would dominate a round); its warm-up (the first two steps, compilation included) is reported.")
    var compilePeer = false

    @Flag(help: "Print time and GFLOP/s per op kind, at 1 thread and at --threads, with the thread efficiency.")
    var profile = false

    @Option(help: "The engine's fewest Winograd tiles per channel (default: the engine's).")
    var minTiles: Int?

    var adapterRank: Int { rank ?? (backbone == .resnet18 ? 8 : 4) }

    /// The PyTorch configurations every round times beside ours: eager in its default
    /// (NCHW) layout, and channels_last, the layout oneDNN's CPU kernels want.
    static let peers: [(name: String, args: [String])] = [("eager", []), ("channels_last", ["--channels-last"])]

    static func imagesPerSecond(_ line: [String: Any]?) -> Double { line?["train_images_per_s"] as? Double ?? 0 }

    func run() throws {
        guard Method.named(method) != nil else { throw ValidationError("no method '\(method)'; see mola-train --help") }
        let (step, store) = makeStep(engine(threads))
        for _ in 0..<2 { step() }
        let referenceArgs = ["--threads", "\(threads)", "--batch", "\(batch)", "--steps", "\(steps)",
                             "--backbone", backbone.rawValue, "--side", "\(side)", "--channels", "\(channels)", "--tasks", "\(tasks)",
                             "--method", method, "--rank", "\(adapterRank)"]
        var best = 0.0, peers: [String: [String: Any]] = [:], torchMissing = noReference
        func runPeer(_ name: String, _ extra: [String]) {
            guard !torchMissing else { return }
            guard let line = pythonLines(packageRoot + "/Benchmarks/reference/train_step_reference.py", referenceArgs + extra).last,
                  let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                torchMissing = true
                FileHandle.standardError.write(Data("train-step: the PyTorch reference (\(name)) printed no result (no torch for python3, or run it alone to see its error); printing ours only\n".utf8))
                return
            }
            if Self.imagesPerSecond(obj) > Self.imagesPerSecond(peers[name]) { peers[name] = obj }
        }
        for _ in 0..<max(1, rounds) {
            let t = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { step() }
            best = max(best, Double(steps * batch) / (Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9))
            for (name, extra) in Self.peers { runPeer(name, extra + ["--rounds", "1"]) }
        }
        if compilePeer { runPeer("compile", ["--channels-last", "--compile", "--rounds", "\(max(1, rounds))"]) }
        var fields: [String: Any] = ["impl": "mola-swift", "network": backbone.rawValue, "method": method, "side": side,
                                     "channels": channels, "tasks": tasks, "threads": threads, "batch": batch,
                                     "parameters": store.trainableCount(), "train_images_per_s": (best * 10).rounded() / 10,
                                     "peak_rss_mb": (peakResidentMegabytes() * 10).rounded() / 10]
        for (name, obj) in peers { fields["pytorch_\(name)_images_per_s"] = Self.imagesPerSecond(obj) }
        if let top = peers.max(by: { Self.imagesPerSecond($0.value) < Self.imagesPerSecond($1.value) }) {
            fields["best_peer"] = top.key
            fields["speedup_vs_best_peer"] = (best / Self.imagesPerSecond(top.value) * 100).rounded() / 100
        }
        if let eager = peers["eager"] { fields["speedup_vs_eager"] = (best / Self.imagesPerSecond(eager) * 100).rounded() / 100 }
        report(fields)
        for (name, _) in Self.peers + [("compile", [])] { if let obj = peers[name] { report(obj) } }
        if profile { profileSteps() }
    }

    /// The engine on `threads` as a training run on `batch` builds it, with `--min-tiles` if given.
    func engine(_ threads: Int) -> Engine {
        var e = Engine(threads: threads, pathBatch: batch)
        if let minTiles { e.winogradMinTiles = minTiles }
        return e
    }

    /// The benchmark's model and batch on `engine`, and one train step of it.
    func makeStep(_ engine: Engine) -> (step: () -> Void, store: ParameterStore) {
        // The method's model as `mola-train` builds it, on the benchmark's network.
        var c = TrainConfig(name: "train-step")
        c.method = Method.named(method)!
        let shape: BackboneConfig = backbone == .resnet18 ? .resnet18() : .resnetMini
        c.backbone.name = backbone.rawValue
        (c.backbone.stemWidth, c.backbone.widths, c.backbone.blocks) = (shape.stemWidth, shape.widths, shape.blocks)
        c.adapters.ranks = shape.widths.map { _ in adapterRank }
        c.adapters.stages = Array(shape.widths.indices)
        c.adapters.alpha = 16
        c.adapters.stem = backbone == .resnet18
        let net = ModelFactory.make(c, input: FeatureShape(height: side, width: side, channels: channels), classes: Array(repeating: 10, count: tasks),
                                    adapterCount: tasks, engine: engine)
        let store = net.store
        var g = RandomGenerator(seed: 1)
        let pixels = side * side * channels
        let x = Tensor(shape: [batch, side, side, channels], scalars: (0..<(batch * pixels)).map { _ in g.nextFloat() })
        let taskOf = (0..<batch).map { Int32($0 * tasks / batch) }
        let labels = (0..<batch).map { _ in Int32(g.nextInt(below: 10)) }
        let layout = BatchLayout(tasks: taskOf, training: true)
        var opt = SGD(momentum: 0.9, weightDecay: 5e-4)
        func step() {
            store.zeroGradients()
            _ = net.forward(x, layout: layout)
            _ = net.lossAndBackward(labels: labels, layout: layout)
            engine.measure(.optimizer) { opt.step(store, learningRate: 0.05) }
        }
        return (step, store)
    }

    /// One profiled round at 1 thread and one at `threads`: per op kind, ms per step, share,
    /// GFLOP/s where the kind does arithmetic, and the speed-up from 1 thread.
    func profileSteps() {
        func measure(_ t: Int) -> [Profiler.Kind: Profiler.Entry] {
            let profiler = Profiler()
            var e = engine(t)
            e.profiler = profiler
            let (step, _) = makeStep(e)
            for _ in 0..<2 { step() }
            profiler.reset()
            for _ in 0..<steps { step() }
            return profiler.entries
        }
        let single = measure(1), multi = measure(threads)
        let total = multi.values.reduce(0) { $0 + $1.seconds }
        for kind in Profiler.Kind.allCases {
            guard let e = multi[kind] else { continue }
            var fields: [String: Any] = ["profile": kind.rawValue, "threads": threads, "ms_per_step": round2(e.seconds * 1000 / Double(steps)),
                                         "share": round2(e.seconds / total), "calls_per_step": e.calls / steps]
            if e.flops > 0 { fields["gflop_per_s"] = round2(e.flops / e.seconds / 1e9) }
            if let s = single[kind], threads > 1 {
                fields["ms_per_step_1_thread"] = round2(s.seconds * 1000 / Double(steps))
                fields["thread_efficiency"] = round2(s.seconds / e.seconds / Double(threads))
            }
            report(fields)
        }
    }

    func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }
}

/// The process's peak resident set size so far, in MB (VmHWM, as the reference reports it).
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}
