import ArgumentParser
import Foundation
import MoLAModel
import MoLATensor

/// Train steps of resnet-mini with MoLA-Grad adapters (see Benchmarks/README.md), images/s,
/// next to the same network in PyTorch CPU when torch is installed.
struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-step", abstract: "resnet-mini MoLA-Grad train steps/s vs PyTorch CPU.")

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

    static let tasks = 4

    func run() throws {
        Parallel.threads = threads
        let store = ParameterStore()
        let adapters = AdapterConfig(count: Self.tasks, ranks: [4, 4, 4], alpha: 16, stages: [0, 1, 2])
        let net = Classifier(store: store, backbone: ResNet(store, config: .resnetMini, input: FeatureShape(height: 28, width: 28, channels: 1),
                                                           adapters: adapters),
                             classes: Array(repeating: 10, count: Self.tasks))
        store.allocate(seed: 0)
        var g = RandomGenerator(seed: 1)
        let x = Tensor(shape: [batch, 28, 28, 1], scalars: (0..<(batch * 784)).map { _ in g.nextFloat() })
        let tasks = (0..<batch).map { Int32($0 * Self.tasks / batch) }
        let labels = (0..<batch).map { _ in Int32(g.nextInt(below: 10)) }
        let layout = BatchLayout(tasks: tasks, training: true)
        var opt = SGD(momentum: 0.9, weightDecay: 5e-4)
        func step() {
            store.zeroGradients()
            _ = net.forward(x, layout: layout)
            _ = net.lossAndBackward(labels: labels, layout: layout)
            opt.step(store, learningRate: 0.05)
        }
        for _ in 0..<3 { step() }
        var best = 0.0, reference: [String: Any]? = nil
        for _ in 0..<max(1, rounds) {
            let t = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { step() }
            best = max(best, Double(steps * batch) / (Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9))
            if !noReference, let line = pythonLines(packageRoot + "/Benchmarks/reference/train_step_reference.py",
                                                    ["--threads", "\(threads)", "--batch", "\(batch)", "--steps", "\(steps)", "--rounds", "1"]).last,
               let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                if (obj["train_images_per_s"] as? Double ?? 0) > (reference?["train_images_per_s"] as? Double ?? 0) { reference = obj }
            }
        }
        var fields: [String: Any] = ["impl": "mola-swift", "network": "resnet-mini", "threads": threads, "batch": batch,
                                     "parameters": store.trainableCount(), "train_images_per_s": (best * 10).rounded() / 10]
        if let reference, let theirs = reference["train_images_per_s"] as? Double {
            fields["pytorch_images_per_s"] = theirs
            fields["speedup"] = (best / theirs * 100).rounded() / 100
        }
        report(fields)
        if let reference { report(reference) }
    }
}
