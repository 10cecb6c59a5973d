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
    /// off, unset or `2` F(2×2) only, `4` F(4×4) wherever Winograd applies, `auto` the
    /// faster per shape). F(2×2) by default: F(4×4)'s larger rounding, amplified by
    /// ConFIG, Nash-MTL and GradVac, breaks the data-parallel tests' two-ranks-equal-one
    /// within 1e-4.
    public var winograd: WinogradChoice
    /// The fewest 2×2 output tiles, per channel of the wider side, for which transforming
    /// the weights pays (0: every eligible shape runs Winograd). On the AVX2 machine of
    /// 2026-12-04 a ResNet-18 step ran 1.2–1.3× faster with 1, which lets its 4×4×512
    /// layers run Winograd; the default stays 4 because with 1 the path of a task group's
    /// convolution changes with its size, and two MPI ranks then no longer train the
    /// model one process trains to within the data-parallel tests' 1e-4.
    public var winogradMinTiles: Int
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
                winogradMinTiles: Int = 4, wideKernels: Bool = CPU.hasAVX512,
                reduceStatistics: (@Sendable (inout [Double]) -> Void)? = nil, profiler: Profiler? = nil) {
        self.threads = max(1, threads)
        self.winograd = winograd
        self.winogradMinTiles = winogradMinTiles
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

    /// `MOLA_WINOGRAD`: `0`, `2` (or unset), `4` or `auto`.
    public static var fromEnvironment: WinogradChoice {
        switch ProcessInfo.processInfo.environment["MOLA_WINOGRAD"] {
        case "0": .off
        case "4": .f4
        case "auto": .auto
        default: .f2
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
