import ArgumentParser
import Foundation
import MoLATensor

/// GFLOP/s of the three convolution passes on every distinct layer shape of a CIFAR-style
/// ResNet-18 (3×3 stem, widths 64…512, 1×1 stride-2 shortcuts): where the train step's
/// convolution time goes, layer by layer.
struct ConvLayersBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conv-layers",
                                                    abstract: "Forward, dW and dX GFLOP/s per ResNet-18 layer shape.")

    @Option(help: "Image side in pixels.") var side: Int = 28
    @Option(help: "Image channels.") var channels: Int = 3
    @Option(help: "Images per batch.") var batch: Int = 128
    @Option(help: "Worker threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .customLong("repeat"), help: "Timed runs per pass; the best is reported.") var runs: Int = 3

    func run() throws {
        Parallel.threads = threads
        var shapes = [ConvShape(batch: batch, height: side, width: side, inChannels: channels, outChannels: 64, kernel: 3, padding: 1)]
        var (h, c) = (side, 64)
        for (stage, width) in [64, 128, 256, 512].enumerated() {
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
            let forward = try bestTime(runs: runs) { Conv2D.forward(s, x: x, w: w, y: &y) }
            let weight = try bestTime(runs: runs) { Conv2D.weightGradient(s, x: x, dy: dy, dw: &dw) }
            let input = try bestTime(runs: runs) { Conv2D.inputGradient(s, w: w, dy: dy, dx: &dx) }
            func rate(_ t: Double) -> Double { (s.flops / t / 1e9 * 10).rounded() / 10 }
            report(["layer": "\(s.height)x\(s.width) \(s.inChannels)->\(s.outChannels) k\(s.kernel) s\(s.stride)", "threads": threads,
                    "forward_gflops": rate(forward), "dw_gflops": rate(weight), "dx_gflops": rate(input),
                    "forward_ms": (forward * 1e4).rounded() / 10, "dw_ms": (weight * 1e4).rounded() / 10, "dx_ms": (input * 1e4).rounded() / 10])
        }
    }
}
