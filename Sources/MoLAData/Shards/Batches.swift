import Foundation
import MoLASupport

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

    /// Task-balanced order (`sampling: {temperature: T}`): each position's task is drawn with
    /// probability p_t ∝ n_t^(1/T) — T = 1 the tasks' own proportions, large T equal shares —
    /// and filled from that task's own shuffled records, cycling through them (a small task is
    /// seen several times an epoch, a large one partly). As long as the plain order, and like
    /// it a function of (seed, epoch) alone, so a resumed epoch continues at its position.
    public init(tasks: [Int32], seed: UInt64, epoch: Int, temperature: Double) {
        let count = tasks.count
        let taskCount = Int(tasks.max() ?? -1) + 1
        var members = [[Int]](repeating: [], count: taskCount)
        for (i, t) in tasks.enumerated() { members[Int(t)].append(i) }
        for t in 0..<taskCount {
            var rng = RandomGenerator(seed: seed, stream: 0x7A5C_0000 &+ UInt64(epoch) &* 1024 &+ UInt64(t))
            rng.shuffle(&members[t])
        }
        let weights = members.map { $0.isEmpty ? 0 : pow(Double($0.count), 1 / temperature) }
        let total = weights.reduce(0, +)
        var cumulative: [Double] = [], acc = 0.0
        for w in weights { acc += w / total; cumulative.append(acc) }
        var rng = RandomGenerator(seed: seed, stream: 0x5A3F_0000 &+ UInt64(epoch))
        var cursor = [Int](repeating: 0, count: taskCount), order: [Int] = []
        order.reserveCapacity(count)
        for _ in 0..<count {
            let u = Double(rng.uniform(0, 1))
            let t = cumulative.firstIndex { u < $0 } ?? weights.lastIndex { $0 > 0 }!
            order.append(members[t][cursor[t] % members[t].count])
            cursor[t] += 1
        }
        indices = order
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
    public func fillImages(_ records: ArraySlice<Int>, into out: UnsafeMutablePointer<Float>, scale: Float = 1, offset: Float = 0,
                           threads: Int = Parallel.cores) {
        let n = shape.pixelCount
        images.withUnsafeBufferPointer { src in
            let base = src.baseAddress!
            let recs = Array(records)
            // A training batch (~100k values) is too small to be worth a second thread.
            Parallel.forRanges(recs.count, threads: threads, minPerThread: max(1, (1 << 20) / n)) { part in
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
