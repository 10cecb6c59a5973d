import Foundation
import MoLAData
import MoLATensor

/// `mola-train bench`: train steps/s of a config's model on the first batches of its data.
public enum TrainBench {
    public static func run(configFile: String, overrides: [String], steps: Int, rounds: Int) throws -> [String: Any] {
        let config = try TrainConfig.load(configFile, overrides: overrides)
        Parallel.threads = config.threads ?? ProcessInfo.processInfo.activeProcessorCount
        let data = try TrainingData(config: config, configFile: configFile, progress: false)
        let train = try data.load(.train)
        let model = ModelFactory.make(config, input: data.shape, classes: data.classes, adapterCount: data.taskNames.count)
        var opt = SGD(momentum: config.optimizer.momentum, weightDecay: config.optimizer.weightDecay)
        let order = EpochOrder(count: train.count, seed: config.seed, epoch: 0)
        var rng = RandomGenerator(seed: 0)
        // Batches prepared outside the timing: the step is what is measured.
        let batches = order.batches(size: config.batchSize, dropLast: true).prefix(8).map { train.batch($0, training: true, rng: &rng) }
        guard !batches.isEmpty else { throw DataError(file: configFile, "fewer training images than one batch") }
        func step(_ i: Int) {
            let b = batches[i % batches.count]
            model.store.zeroGradients()
            _ = model.forward(b.images, layout: b.layout)
            _ = model.lossAndBackward(labels: b.labels, layout: b.layout)
            opt.step(model.store, learningRate: 0.01)
        }
        for i in 0..<3 { step(i) }
        var best = 0.0
        for _ in 0..<max(1, rounds) {
            let t = DispatchTime.now().uptimeNanoseconds
            for i in 0..<steps { step(i) }
            best = max(best, Double(steps * config.batchSize) / (Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9))
        }
        return ["config": configFile, "method": config.method.rawValue, "backbone": config.backbone.name, "threads": Parallel.threads,
                "batch": config.batchSize, "parameters": ParameterCounts(model.store).total, "tasks": data.taskNames.count,
                "train_images_per_s": (best * 10).rounded() / 10]
    }
}
