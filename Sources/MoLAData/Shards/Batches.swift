import MoLATensor

/// The order records are visited in an epoch: a permutation drawn from (seed, epoch) alone,
/// so any process can recompute it, resume mid-epoch from a position, or take its rank's
/// share (positions rank, rank + world, …) of a data-parallel run.
public struct EpochOrder: Equatable, Sendable {
    public let indices: [Int]

    public init(count: Int, seed: UInt64, epoch: Int, shuffle: Bool = true, rank: Int = 0, world: Int = 1) {
        precondition(world >= 1 && (0..<world).contains(rank))
        var order = Array(0..<count)
        if shuffle {
            var rng = RandomGenerator(seed: seed, stream: 0xE90C_0000 &+ UInt64(epoch))
            rng.shuffle(&order)
        }
        indices = world == 1 ? order : stride(from: rank, to: count, by: world).map { order[$0] }
    }

    /// The batches of this order from record position `start` on (a resumed epoch starts
    /// where the interrupted one stopped). The last batch may be short unless `dropLast`.
    public func batches(size: Int, from start: Int = 0, dropLast: Bool = false) -> [ArraySlice<Int>] {
        var out: [ArraySlice<Int>] = []
        var lo = start
        while lo < indices.count {
            let hi = min(indices.count, lo + size)
            if dropLast && hi - lo < size { break }
            out.append(indices[lo..<hi])
            lo = hi
        }
        return out
    }
}

extension SplitData {
    /// Writes the images of `records` (N×H×W×C, channels last) to `out` as
    /// `(byte / 255) · scale + offset`: [0, 1] by default, [-1, 1] with scale 2, offset -1.
    public func fillImages(_ records: ArraySlice<Int>, into out: UnsafeMutablePointer<Float>, scale: Float = 1, offset: Float = 0) {
        let n = shape.pixelCount
        images.withUnsafeBufferPointer { src in
            let base = src.baseAddress!
            let recs = Array(records)
            // A training batch (~100k values) is too small to be worth a second thread.
            Parallel.forRanges(recs.count, minPerThread: max(1, (1 << 20) / n)) { part in
                for k in part {
                    let s = base + recs[k] * n, d = out + k * n
                    var i = 0
                    while i + 16 <= n {  // 16 pixels at a time: one widening load, one store
                        let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<UInt8>.self)
                        UnsafeMutableRawPointer(d + i).storeBytes(of: SIMD16<Float>(v) * (1 / 255) * scale + offset, as: SIMD16<Float>.self)
                        i += 16
                    }
                    while i < n { d[i] = Float(s[i]) * (1 / 255) * scale + offset; i += 1 }
                }
            }
        }
    }

    public func labels(_ records: ArraySlice<Int>) -> [Int32] { records.map { labels[$0] } }
    public func tasks(_ records: ArraySlice<Int>) -> [Int32] { records.map { tasks[$0] } }
}
