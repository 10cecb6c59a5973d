import Dispatch
import Foundation

/// Coarse-grained threading for kernels and data work.
///
/// Work is always cut into the same parts for a given `threads` value and each part is
/// handled by one worker, so results are identical from run to run at a fixed thread count.
public enum Parallel {
    /// Worker threads kernels may use; defaults to every core. Set once at start-up
    /// (the `--threads` flags of the tools do).
    nonisolated(unsafe) public static var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Runs `body(worker)` for worker in 0..<n concurrently and waits for all.
    public static func run(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 { body(0); return }
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }

    /// Splits 0..<count into at most `threads` contiguous ranges of near-equal size and runs
    /// `body(range)` for each concurrently. The split depends only on `count` and `threads`.
    public static func forRanges(_ count: Int, threads t: Int = Parallel.threads, minPerThread: Int = 1,
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
