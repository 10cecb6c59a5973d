import Dispatch
import Foundation
import MoLASupport
import Synchronization

/// How the kernels run: a value every model holds (in its `ParameterStore`) and every
/// kernel call takes, so two models in one process can run differently and no test's
/// setting reaches another's. `Engine.default` is the machine's: every core, Winograd on
/// unless `MOLA_WINOGRAD=0`, the AVX-512 kernels where the CPU has them.
public struct Engine: Sendable {
    /// Worker threads a kernel may use. Results are fixed for a given count.
    public var threads: Int
    /// Which Winograd tile the 3×3 stride-1 convolutions run with (`MOLA_WINOGRAD`: `0`
    /// off, `2` F(2×2) only, `4` F(4×4) wherever Winograd applies, unset or `auto` the
    /// faster per shape and pass, `Winograd.tile`).
    public var winograd: WinogradChoice
    /// The fewest 2×2 output tiles, per channel of the wider side, for which transforming
    /// the weights pays (0: every eligible shape runs Winograd). 1 lets ResNet-18's 4×4×512
    /// layers run Winograd at batch 128, which made its step 1.2–1.3× faster on an AVX2
    /// machine (2-core AMD EPYC, 2026-12-04); 4 keeps them on im2col.
    public var winogradMinTiles: Int
    /// The batch size paths are chosen for (nil: each call's own): Winograd's tile size
    /// and an adapter layer's merged or factorised form. A training run sets its global
    /// batch, so which kernels a layer runs does not depend on how many images of the batch
    /// a rank or a task group holds: one process and two ranks then train the same model
    /// up to the order of their sums.
    public var pathBatch: Int?
    /// The AVX-512 micro-kernel (bit-identical results; faster on full-width cores).
    public var wideKernels: Bool
    /// Synchronised batch norm across data-parallel processes (`sync_batchnorm`, as
    /// PyTorch's SyncBatchNorm): sums the given Float64 values over all processes in
    /// place, so the statistics are the global batch's. Nil: each process normalises with
    /// its own share of the batch.
    public var reduceStatistics: (@Sendable (inout [Double]) -> Void)?
    /// Where each operation's time goes (`mola-bench train-step --profile`); nil: not measured.
    public var profiler: Profiler?

    public init(threads: Int = Parallel.cores, winograd: WinogradChoice = .fromEnvironment,
                winogradMinTiles: Int = 1, pathBatch: Int? = nil, wideKernels: Bool = CPU.hasAVX512,
                reduceStatistics: (@Sendable (inout [Double]) -> Void)? = nil, profiler: Profiler? = nil) {
        self.threads = max(1, threads)
        self.winograd = winograd
        self.winogradMinTiles = winogradMinTiles
        self.pathBatch = pathBatch
        self.wideKernels = wideKernels && CPU.hasAVX512
        self.reduceStatistics = reduceStatistics
        self.profiler = profiler
    }

    /// The machine's defaults.
    public static let `default` = Engine()

    /// This engine on `n` threads.
    public func threads(_ n: Int) -> Engine {
        var e = self
        e.threads = max(1, n)
        return e
    }

    /// Runs `body`, adding its wall time (and `flops`, for rates) to `kind` when profiling.
    @inlinable
    public func measure<R>(_ kind: Profiler.Kind, flops: @autoclosure () -> Double = 0, _ body: () throws -> R) rethrows -> R {
        guard let profiler else { return try body() }
        return try profiler.measured(kind, flops: flops(), body)
    }
}

/// Which Winograd convolutions run: none, only F(2×2, 3×3), F(4×4, 3×3) wherever Winograd
/// applies, or (`auto`) each pass of each shape with the tile size that wins there (`Winograd.tile`).
public enum WinogradChoice: String, Sendable {
    case off, f2, f4, auto

    /// `MOLA_WINOGRAD`: `0`, `2`, `4` or `auto` (or unset).
    public static var fromEnvironment: WinogradChoice {
        switch ProcessInfo.processInfo.environment["MOLA_WINOGRAD"] {
        case "0": .off
        case "2": .f2
        case "4": .f4
        default: .auto
        }
    }
}

/// Time and work per kind of operation. Kernels are called from one thread (the
/// trainer's) and spread their work over the pool themselves, so wall time on the calling
/// thread is the op's time. Nested measurements count towards the outermost one only (a
/// fused op is not counted twice).
public final class Profiler: Sendable {
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

    private struct State { var entries: [Kind: Entry] = [:], depth = 0 }
    private let state = Mutex(State())

    public init() {}

    public var entries: [Kind: Entry] { state.withLock { $0.entries } }
    public func reset() { state.withLock { $0.entries = [:] } }

    @usableFromInline
    func measured<R>(_ kind: Kind, flops: Double, _ body: () throws -> R) rethrows -> R {
        let outermost = state.withLock { s in
            s.depth += 1
            return s.depth == 1
        }
        defer { state.withLock { $0.depth -= 1 } }
        guard outermost else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        state.withLock { s in
            var e = s.entries[kind] ?? Entry()
            e.seconds += seconds
            e.flops += flops
            e.calls += 1
            s.entries[kind] = e
        }
        return result
    }
}
