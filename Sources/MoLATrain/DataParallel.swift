import Foundation
import MoLAData
import MoLAModel
import MoLATensor

/// Data-parallel training over MPI ranks: one model, the same on every rank. Every rank
/// draws the same global batch order; rank r trains on its contiguous 1/N of each global
/// batch; one all-reduce averages the gradient arena per step, so the optimizer steps
/// identically everywhere. Rank 0 alone writes files.
public final class DataParallel {
    public let mpi: MPI
    public var rank: Int { mpi.rank }
    public var size: Int { mpi.size }
    public var isLeader: Bool { mpi.rank == 0 }
    /// Time spent in the gradient all-reduce, for the benchmark.
    public private(set) var allReduceSeconds = 0.0
    public private(set) var allReduces = 0

    /// What batch norm calls to normalise over the global batch (`sync_batchnorm: true`)
    /// instead of each rank's share: a sum of its statistics over the ranks.
    public var statisticsReducer: @Sendable (inout [Double]) -> Void { { [mpi] in mpi.allReduceSum(&$0) } }

    public init(_ mpi: MPI) { self.mpi = mpi }

    /// Kernel threads for one rank when the config names none: the cores shared by the
    /// ranks on this node.
    public static func defaultThreads(cores: Int) -> Int {
        let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) } ?? 1
        return max(1, cores / max(1, local))
    }

    /// This rank's share of a global batch: a contiguous 1/N (the first `count % N` ranks
    /// take one more).
    public func share<C: Collection>(_ records: C) -> C.SubSequence where C.Index == Int {
        let n = records.count, base = n / size, extra = n % size
        let lo = rank * base + min(rank, extra), hi = lo + base + (rank < extra ? 1 : 0)
        return records[(records.startIndex + lo)..<(records.startIndex + hi)]
    }

    /// N·n_t(this rank)/n_t(global) per task: the global per-task counts follow from the
    /// global batch, which every rank knows (the same order on every rank), so no message
    /// is needed to make a rank holding 2 rows of a task weight them as 2 of n_t.
    public func lossWeights(global: [Int32], mine: BatchLayout, tasks: Int) -> [Double] {
        var g = [Int](repeating: 0, count: tasks), m = g
        for t in global { g[Int(t)] += 1 }
        for group in mine.groups { m[group.task] += group.range.count }
        return (0..<tasks).map { g[$0] > 0 ? Double(size) * Double(m[$0]) / Double(g[$0]) : 0 }
    }

    /// Averages the gradients over ranks (one all-reduce of the arena), and sums the
    /// step's statistics: [loss, correct, stop flag] → (mean loss, total correct, any stop).
    /// `gradientsReduced`: the gradients are already the global batch's (a balancer combined
    /// the ranks' per-task gradients), so only the statistics are summed.
    public func reduceStep(_ store: ParameterStore, loss: Double, correct: Int, stop: Bool, gradientsReduced: Bool = false)
        -> (loss: Double, correct: Int, stop: Bool) {
        if !gradientsReduced {
            let start = DispatchTime.now().uptimeNanoseconds
            averageOverRanks(store.gradients, count: store.count)
            allReduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            allReduces += 1
        }
        var stats = [loss, Double(correct), stop ? 1 : 0]
        mpi.allReduceSum(&stats)
        return (stats[0] / Double(size), Int(stats[1]), stats[2] > 0)
    }

    func averageOverRanks(_ p: UnsafeMutablePointer<Float>, count: Int) {
        mpi.allReduceSum(p, count: count)
        let inverse = 1 / Float(size)
        for i in 0..<count { p[i] *= inverse }
    }

    /// Each task's gradient over the global batch: the ranks' averaged, one all-reduce per
    /// task (each rank's lossWeights make its share count as n_t(rank) of n_t). Through our
    /// own buffer: Swift array storage handed to MPI lost the sums in release builds.
    func reduceTaskGradients(_ grads: [[Float]]) -> [[Float]] {
        guard let count = grads.first?.count else { return grads }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        return grads.map { g in
            g.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: count) }
            averageOverRanks(buffer, count: count)
            return Array(UnsafeBufferPointer(start: buffer, count: count))
        }
    }

    /// Each task's mean loss over the global batch from the ranks' means and row counts
    /// (nil: no rank holds the task).
    func globalTaskLosses(_ local: [Double?], rows: [Int]) -> [Double?] {
        let t = local.count
        var v = (0..<t).map { (local[$0] ?? 0) * Double(rows[$0]) } + rows.map(Double.init)
        mpi.allReduceSum(&v)
        return (0..<t).map { v[t + $0] > 0 ? v[$0] / v[t + $0] : nil }
    }

    /// Rank 0's batch-norm running statistics to every rank. Without sync_batchnorm each
    /// rank's drift from its own share; as PyTorch DDP (which broadcasts rank 0's buffers
    /// before every forward) the model keeps rank 0's. They only matter for evaluation,
    /// so this runs before each one and before checkpoints.
    public func adoptLeaderBuffers(_ store: ParameterStore) {
        for e in store.entries where !e.trainable { mpi.broadcast(store.values + e.offset, count: e.count) }
    }

    /// Stops the run when the ranks' weights differ (they never should: a bug or a broken
    /// node), naming the ranks and what to do.
    public func checkWeightsAgree(_ store: ParameterStore, step: Int) throws {
        let hashes = mpi.allGather(Self.fingerprint(store.values, count: store.count))
        guard Set(hashes).count == 1 else {
            let differing = hashes.enumerated().filter { $0.element != hashes[0] }.map { "rank \($0.offset)" }
            throw TrainError(description: "at step \(step) the weights of \(differing.joined(separator: ", ")) differ from rank 0's "
                             + "(hashes \(hashes.map { String($0, radix: 16) }.joined(separator: ", "))): the ranks no longer train one model. "
                             + "Resume from the last checkpoint (--resume); if it recurs, check that every node runs the same mola-train build.")
        }
    }

    /// For the test of the check above: the rank named by MOLA_TEST_PERTURB_RANK nudges one
    /// weight before training, as a faulty node would.
    func perturbForTesting(_ store: ParameterStore) {
        guard ProcessInfo.processInfo.environment["MOLA_TEST_PERTURB_RANK"].flatMap({ Int($0) }) == rank else { return }
        if let e = store.entries.first(where: \.trainable) { store.values[e.offset] += 1e-3 }
    }

    /// FNV-1a over the bytes of the arena.
    static func fingerprint(_ p: UnsafePointer<Float>, count: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        UnsafeRawBufferPointer(start: p, count: count * 4).forEach { h = (h ^ UInt64($0)) &* 0x100_0000_01b3 }
        return h
    }

    /// The rows of a split this rank evaluates: a contiguous 1/N.
    public func evaluationRange(_ count: Int) -> Range<Int> { share(0..<count).indices }

    /// Sums the ranks' evaluation counts, loss sums and router-weight sums.
    func reduce(_ e: Evaluation, gateSums: [[Double]]?) -> (correct: [Int], counts: [Int], loss: Double, gateSums: [[Double]]?) {
        let tasks = e.counts.count, k = gateSums?.first?.count ?? 0
        var v = e.correct.map(Double.init) + e.counts.map(Double.init) + [e.loss] + (gateSums?.flatMap { $0 } ?? [])
        mpi.allReduceSum(&v)
        let gates = k > 0 ? (0..<tasks).map { t in Array(v[(2 * tasks + 1 + t * k)..<(2 * tasks + 1 + (t + 1) * k)]) } : nil
        return (v[0..<tasks].map { Int($0) }, v[tasks..<(2 * tasks)].map { Int($0) }, v[2 * tasks], gates)
    }
}
