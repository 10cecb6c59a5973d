import ArgumentParser
import Foundation
import MoLASupport
import MoLATensor

/// GFLOP/s of the three convolution passes on every distinct layer shape of a CIFAR-style
/// ResNet-18 (3×3 stem, widths 64…512, 1×1 stride-2 shortcuts): where the train step's
/// convolution time goes, layer by layer, with the path each ran (`MOLA_WINOGRAD` chooses:
/// `0` im2col, `2` F(2×2, 3×3), `4` F(4×4, 3×3), unset the engine's choice per shape).
struct ConvLayersBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conv-layers",
                                                    abstract: "Forward, dW and dX GFLOP/s per ResNet-18 layer shape.")

    @Option(help: "Image side in pixels.") var side: Int = 28
    @Option(help: "Image channels.") var channels: Int = 3
    @Option(help: "Images per batch.") var batch: Int = 128
    @Option(help: "Worker threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .customLong("repeat"), help: "Timed runs per pass; the best is reported.") var runs: Int = 3
    @Option(help: "Task groups: with more than one, each pass runs per group with that task's rank-8 adapter merged (MoLA-Grad).")
    var groups: Int = 1
    @Option(help: "Stage widths (resnet-mini's: 16,32,64).") var widths: String = "64,128,256,512"
    @Option(help: "The engine's fewest Winograd tiles per channel (default: the engine's).") var minTiles: Int?

    func run() throws {
        var engine = Engine(threads: threads)
        if let minTiles { engine.winogradMinTiles = minTiles }
        let stages = widths.split(separator: ",").compactMap { Int($0) }
        guard let first = stages.first else { throw ValidationError("--widths: a comma-separated list of channel counts") }
        var shapes = [ConvShape(batch: batch, height: side, width: side, inChannels: channels, outChannels: first, kernel: 3, padding: 1)]
        var (h, c) = (side, first)
        for (stage, width) in stages.enumerated() {
            let stride = stage == 0 ? 1 : 2
            shapes.append(ConvShape(batch: batch, height: h, width: h, inChannels: c, outChannels: width, kernel: 3, stride: stride, padding: 1))
            if stride != 1 { shapes.append(ConvShape(batch: batch, height: h, width: h, inChannels: c, outChannels: width, kernel: 1, stride: 2)) }
            h = shapes.last!.outHeight
            c = width
            shapes.append(ConvShape(batch: batch, height: h, width: h, inChannels: c, outChannels: c, kernel: 3, padding: 1))
        }
        var g = RandomGenerator(seed: 0)
        for s in shapes {
            let x = (0..<s.inputCount).map { _ in g.nextFloat() - 0.5 }
            let w = (0..<s.weightCount).map { _ in g.nextFloat() - 0.5 }
            let dy = (0..<s.outputCount).map { _ in g.nextFloat() - 0.5 }
            var y = [Float](repeating: 0, count: s.outputCount), dx = [Float](repeating: 0, count: s.inputCount)
            var dw = [Float](repeating: 0, count: s.weightCount)
            let rank = 8
            let a = (0..<(s.patch * rank)).map { _ in g.nextFloat() - 0.5 }, b = (0..<(rank * s.outChannels)).map { _ in g.nextFloat() - 0.5 }
            // Each group: its images, its adapter (here the same values: speed does not depend on them).
            let parts = (0..<groups).map { Parallel.range(of: $0, parts: groups, count: s.batch) }
            func each(_ body: (ConvShape, _ input: Int, _ output: Int, ConvWeights) -> Void) {
                w.withUnsafeBufferPointer { wp in a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    for part in parts {
                        var shape = s
                        shape.batch = part.count
                        let weights = groups == 1 ? ConvWeights(wp.baseAddress!)
                            : ConvWeights(wp.baseAddress!, adapter: (ap.baseAddress!, bp.baseAddress!, rank, 2))
                        body(shape, part.lowerBound * s.inputCount / s.batch, part.lowerBound * s.outputCount / s.batch, weights)
                    }
                } } }
            }
            let forward = try bestTime(runs: runs) {
                each { shape, i, o, weights in x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    Conv2D.forward(shape, x: xp.baseAddress! + i, weights: weights, y: yp.baseAddress! + o, engine: engine)
                } } }
            }
            let weight = try bestTime(runs: runs) {
                each { shape, i, o, _ in x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dyp in
                    Conv2D.weightGradient(shape, x: xp.baseAddress! + i, dy: dyp.baseAddress! + o, dw: &dw, accumulate: groups == 1, engine: engine)
                } } }
            }
            let input = try bestTime(runs: runs) {
                each { shape, i, o, weights in dy.withUnsafeBufferPointer { dyp in dx.withUnsafeMutableBufferPointer { dxp in
                    Conv2D.inputGradient(shape, weights: weights, dy: dyp.baseAddress! + o, dx: dxp.baseAddress! + i, engine: engine)
                } } }
            }
            func rate(_ t: Double) -> Double { (s.flops / t / 1e9 * 10).rounded() / 10 }
            var group = s
            group.batch = parts[0].count
            // Each pass's path: F2 or F4 (Winograd F(m×m, 3×3)), or im2col.
            let tile = Winograd.Pass.allCases.map { Winograd.tile(group, engine: engine, pass: $0).map { "F\($0)" } ?? "im2col" }.joined(separator: "/")
            report(["layer": "\(s.height)x\(s.width) \(s.inChannels)->\(s.outChannels) k\(s.kernel) s\(s.stride)", "threads": threads, "groups": groups, "path_forward_dx_dw": tile,
                    "forward_gflops": rate(forward), "dw_gflops": rate(weight), "dx_gflops": rate(input),
                    "forward_ms": (forward * 1e4).rounded() / 10, "dw_ms": (weight * 1e4).rounded() / 10, "dx_ms": (input * 1e4).rounded() / 10])
        }
    }
}
