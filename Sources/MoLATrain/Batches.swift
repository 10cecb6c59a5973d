import MoLAData
import MoLAModel
import MoLASupport
import MoLATensor

/// One batch as the model wants it: records grouped by task, images scaled to [-1, 1].
struct PreparedBatch {
    var images: Tensor
    var labels: [Int32]
    var layout: BatchLayout
    /// The split's record behind each row, in the batch's (task-grouped) order.
    var records: [Int]
}

extension SplitData {
    /// The batch of `records`, regrouped by task (the model runs adapted convolutions per
    /// task group). With `augment`, random crops and flips drawn from `rng`.
    func batch(_ records: ArraySlice<Int>, training: Bool, augment: TrainConfig.Augment? = nil, rng: inout RandomGenerator,
               threads: Int = Parallel.cores) -> PreparedBatch {
        let taskIDs = records.map { tasks[$0] }
        let order = BatchLayout.groupingOrder(taskIDs)
        let recs = ArraySlice(order.map { records[records.startIndex + $0] })
        let n = recs.count
        var x = Tensor(uninitialized: [n, shape.height, shape.width, shape.channels])
        let p = x.mutablePointer()
        fillImages(recs, into: p, scale: 2, offset: -1, threads: threads)
        if let a = augment, a.cropPadding > 0 || a.flip { augmentInPlace(p, images: n, a, rng: &rng) }
        return PreparedBatch(images: x, labels: recs.map { labels[$0] }, layout: BatchLayout(tasks: recs.map { tasks[$0] }, training: training),
                             records: Array(recs))
    }

    /// Random crop with zero padding (pad by `cropPadding`, crop back to size) and random
    /// horizontal flip, per image.
    private func augmentInPlace(_ p: UnsafeMutablePointer<Float>, images n: Int, _ a: TrainConfig.Augment, rng: inout RandomGenerator) {
        let h = shape.height, w = shape.width, c = shape.channels, pad = a.cropPadding
        var tmp = [Float](repeating: 0, count: h * w * c)
        for i in 0..<n {
            let dy = pad > 0 ? rng.nextInt(below: 2 * pad + 1) - pad : 0
            let dx = pad > 0 ? rng.nextInt(below: 2 * pad + 1) - pad : 0
            let flip = a.flip && rng.nextInt(below: 2) == 1
            let img = p + i * h * w * c
            for y in 0..<h {
                for xo in 0..<w {
                    let sy = y + dy, sxRaw = xo + dx
                    let sx = flip ? w - 1 - sxRaw : sxRaw
                    for ch in 0..<c {
                        // Padding is background: -1 after scaling (pixel value 0).
                        tmp[(y * w + xo) * c + ch] = (0..<h).contains(sy) && (0..<w).contains(sx) ? img[(sy * w + sx) * c + ch] : -1
                    }
                }
            }
            tmp.withUnsafeBufferPointer { img.update(from: $0.baseAddress!, count: h * w * c) }
        }
    }
}
