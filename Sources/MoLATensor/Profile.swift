import Dispatch
import Foundation

/// Where a training step's time goes, by kind of operation (`mola-bench train-step
/// --profile`). Off by default: then `measure` is one branch around the work.
///
/// Kernels are called from one thread (the trainer's) and spread their work over the pool
/// themselves, so wall time on the calling thread is the op's time. Nested measurements
/// count towards the outermost one only (a fused op is not counted twice).
public enum Profile {
    public enum Kind: String, CaseIterable, Sendable {
        case convForward = "conv forward"
        case convWeightGradient = "conv dW"
        case convInputGradient = "conv dX"
        case batchNorm = "batch norm"
        case elementwise = "residual + relu"
        case pooling
        case adapters = "adapter merge"
        case loss = "loss + heads"
        case optimizer
    }

    public struct Entry: Sendable {
        public var seconds = 0.0, flops = 0.0, calls = 0
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var entries = [Kind: Entry]()
    nonisolated(unsafe) private static var depth = 0

    public static func reset() { entries = [:] }

    /// Runs `body`, adding its wall time (and `flops`, for rates) to `kind` when enabled.
    @inlinable
    public static func measure<R>(_ kind: Kind, flops: @autoclosure () -> Double = 0, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        return try measured(kind, flops: flops(), body)
    }

    @usableFromInline
    static func measured<R>(_ kind: Kind, flops: Double, _ body: () throws -> R) rethrows -> R {
        guard depth == 0, Thread.isMainThread else { return try body() }
        depth += 1
        defer { depth -= 1 }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        var e = entries[kind] ?? Entry()
        e.seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        e.flops += flops
        e.calls += 1
        entries[kind] = e
        return result
    }
}
