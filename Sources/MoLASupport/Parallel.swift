import Dispatch
import Foundation
import Synchronization

/// Coarse-grained threading for kernels and data work.
///
/// Work is always cut into the same parts for a given `threads` value and each part is
/// handled by one worker, so results are identical from run to run at a fixed thread count.
///
/// Jobs go to a small pool of persistent workers that spin for a moment after each job
/// before sleeping: a training step makes hundreds of kernel calls of a millisecond or
/// less, and waking threads through Dispatch costs 20-30 µs each here (measured: 3 MFLOP
/// jobs reached 62 of 165 GFLOP/s on 2 threads).
public enum Parallel {
    /// The machine's cores: the default thread count of every tool.
    public static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// Runs `body(worker)` for worker in 0..<n concurrently and waits for all.
    public static func run(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 { body(0); return }
        if let pool = WorkerPool.shared, n <= pool.size + 1, pool.tryRun(n, body) { return }
        // The pool is busy (another thread is using it) or too small: fall back to Dispatch.
        withoutActuallyEscaping(body) { body in
            let job = UncheckedJob(body)
            DispatchQueue.concurrentPerform(iterations: n) { job.body($0) }
        }
    }

    /// Splits 0..<count into at most `threads` contiguous ranges of near-equal size and runs
    /// `body(range)` for each concurrently. The split depends only on `count` and `threads`.
    public static func forRanges(_ count: Int, threads t: Int, minPerThread: Int = 1,
                                 _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(t, count / max(1, minPerThread)))
        if parts == 1 { if count > 0 { body(0..<count) }; return }
        run(parts) { p in body(range(of: p, parts: parts, count: count)) }
    }

    /// The p-th of `parts` near-equal contiguous ranges covering 0..<count.
    @inlinable
    public static func range(of p: Int, parts: Int, count: Int) -> Range<Int> {
        (count * p / parts)..<(count * (p + 1) / parts)
    }
}

/// A parallel loop's body handed to other threads. Unchecked: the body is the caller's
/// (not Sendable: it captures buffers), but the caller waits for every part, and the parts
/// a kernel hands out write disjoint memory — the contract of `Parallel.run`.
struct UncheckedJob: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}

/// Persistent workers for `Parallel.run`. The calling thread runs part 0 itself.
/// Unchecked Sendable: `job` and `parts` are written only by the thread holding `busy`,
/// before it bumps `generation` (release), and read by workers after they see it (acquire).
final class WorkerPool: @unchecked Sendable {
    static let shared: WorkerPool? = {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return cores > 1 ? WorkerPool(workers: cores - 1) : nil
    }()

    let size: Int
    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let condition = NSCondition()
    /// The current job; written before `generation` is bumped, read after it is seen (the
    /// atomic orders them, which the compiler cannot check: hence unsafe).
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var parts = 0
    /// How long an idle worker spins before it sleeps.
    private static let spinNanoseconds: UInt64 = 300_000

    init(workers: Int) {
        size = workers
        for w in 1...workers {
            let t = Thread { [unowned self] in self.loop(worker: w) }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Runs the job on the pool unless another thread holds it (then returns false).
    func tryRun(_ n: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            parts = n
            remaining.store(n - 1, ordering: .relaxed)
            condition.lock()
            generation.add(1, ordering: .releasing)
            condition.broadcast()
            condition.unlock()
            escapable(0)
            while remaining.load(ordering: .acquiring) > 0 {}
            job = nil
        }
        return true
    }

    private func loop(worker: Int) {
        var seen = 0
        while true {
            let spinStart = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins & 1023 == 0 && DispatchTime.now().uptimeNanoseconds - spinStart > Self.spinNanoseconds {
                    condition.lock()
                    while generation.load(ordering: .acquiring) == seen { condition.wait() }
                    condition.unlock()
                    break
                }
            }
            seen = generation.load(ordering: .acquiring)
            if worker < parts {
                execute(worker)
                remaining.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Calls the job; any reference to it taken here is gone when this returns, before the
    /// caller is told the part is done (the job is only borrowed for the call).
    @inline(never)
    private func execute(_ worker: Int) { job?(worker) }
}
