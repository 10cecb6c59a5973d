import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor

/// `mola-train bench`: train steps/s of a config's model on the first batches of its data.
public enum TrainBench {
    /// With `parallel` (under mpirun) each rank steps on its 1/N of every batch and the
    /// gradients are all-reduced, as in training; images/s counts the global batch.
    public static func run(configFile: String, overrides: [String], steps: Int, rounds: Int, parallel: DataParallel? = nil) throws -> [String: Any] {
        let config = try TrainConfig.load(configFile, overrides: overrides)
        let engine = config.engine(parallel: parallel)
        let data = try TrainingData(config: config, configFile: configFile, progress: false)
        let train = try data.load(.train)
        let model = ModelFactory.make(config, input: data.shape, classes: data.classes, adapterCount: data.taskNames.count, engine: engine)
        var opt = SGD(momentum: config.optimizer.momentum, weightDecay: config.optimizer.weightDecay)
        let order = EpochOrder(count: train.count, seed: config.seed, epoch: 0)
        var rng = RandomGenerator(seed: 0)
        // Batches prepared outside the timing: the step is what is measured.
        let batches = order.batches(size: config.batchSize, dropLast: true).prefix(8).map { records in
            var b = train.batch(parallel?.share(records) ?? records, training: true, rng: &rng)
            if let parallel {
                b.layout.lossWeights = parallel.lossWeights(global: records.map { train.tasks[$0] }, mine: b.layout, tasks: data.taskNames.count)
            }
            return (records: records, batch: b)
        }
        guard !batches.isEmpty else { throw DataError(file: configFile, "fewer training images than one batch") }
        // The run's own step: its balancer (T passes for a combiner, one with rep_grad) is timed.
        var trainingStep = config.makeStep(model: model, parallel: parallel, tasks: data.taskNames.count, recordTasks: train.tasks)
        let stepsPerEpoch = Trainer.stepsPerEpoch(records: train.count, batchSize: config.batchSize)
        func step(_ i: Int) {
            model.beginStep(config.progress(step: i, stepsPerEpoch: stepsPerEpoch))
            var b = batches[i % batches.count].batch  // a copy: a loss weighting rewrites its layout's weights
            let (_, loss) = trainingStep.run(&b, records: batches[i % batches.count].records, step: i)
            // The barrier first, so allreduce_ms is the transfer, not waiting for a slower rank.
            parallel?.mpi.barrier()
            _ = parallel?.reduceStep(model.store, loss: loss, correct: 0, stop: false, gradientsReduced: trainingStep.averagesOverRanks)
            opt.step(model.store, learningRate: 0.01)
        }
        for i in 0..<3 { step(i) }
        var best = 0.0
        let warm = (parallel?.allReduceSeconds ?? 0, parallel?.allReduces ?? 0)
        for _ in 0..<max(1, rounds) {
            let t = DispatchTime.now().uptimeNanoseconds
            for i in 0..<steps { step(i) }
            best = max(best, Double(steps * config.batchSize) / (Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9))
        }
        var result: [String: Any] = ["config": configFile, "method": config.method.name, "weighting": config.weightingLabel ?? "none",
                                     "backbone": config.backbone.name, "threads": engine.threads, "batch": config.batchSize, "parameters": ParameterCounts(model.store).total, "tasks": data.taskNames.count,
                                     "train_images_per_s": (best * 10).rounded() / 10, "ranks": parallel?.size ?? 1]
        if let parallel {
            let calls = parallel.allReduces - warm.1
            result["allreduce_ms"] = ((parallel.allReduceSeconds - warm.0) / Double(max(1, calls)) * 1e4).rounded() / 10
            result["allreduce_mb"] = (Double(model.store.count * 4) / 1e5).rounded() / 10
        }
        return result
    }
}
