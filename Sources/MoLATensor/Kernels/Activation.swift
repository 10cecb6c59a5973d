import Foundation
import MoLASupport
/// ReLU forward and backward over n values; either may run in place.
public enum ReLU {
    /// y = max(x, 0).
    public static func forward(_ n: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        let threads = engine.threads
        Parallel.forRanges(n, threads: threads, minPerThread: 1 << 16) { part in
            for i in part { y[i] = max(x[i], 0) }
        }
    }

    /// out = base + (dy where the ReLU's output y was positive): a residual block's input
    /// gradient, its main branch's plus the identity branch's, in one pass. out may alias
    /// base (explicit vectors: the compiler's loop would run scalar on the overlap).
    public static func addBackward(_ n: Int, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, to base: UnsafePointer<Float>,
                                   into out: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        let threads = engine.threads
        typealias V = SIMD8<Float>
        Parallel.forRanges(n, threads: threads, minPerThread: 1 << 16) { part in
            var i = part.lowerBound
            while i + 8 <= part.upperBound {
                var g = UnsafeRawPointer(dy + i).loadUnaligned(as: V.self)
                g.replace(with: V(), where: UnsafeRawPointer(y + i).loadUnaligned(as: V.self) .<= V())
                UnsafeMutableRawPointer(out + i).storeBytes(of: UnsafeRawPointer(base + i).loadUnaligned(as: V.self) + g, as: V.self)
                i += 8
            }
            while i < part.upperBound { out[i] = base[i] + (y[i] > 0 ? dy[i] : 0); i += 1 }
        }
    }

    /// dx = dy where the forward output y was positive, 0 elsewhere.
    public static func backward(_ n: Int, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                engine: Engine = .default) {
        let threads = engine.threads
        Parallel.forRanges(n, threads: threads, minPerThread: 1 << 16) { part in
            for i in part { dx[i] = y[i] > 0 ? dy[i] : 0 }
        }
    }
}

/// The logistic sigmoid σ(x) = 1 / (1 + e^(−x)) and its gradient dx = dy·σ·(1 − σ), from
/// the forward's output (MTAN's attention masks).
public enum Sigmoid {
    public static func forward(_ n: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, engine: Engine = .default) {
        Parallel.forRanges(n, threads: engine.threads, minPerThread: 1 << 15) { part in
            for i in part { y[i] = 1 / (1 + Foundation.exp(-x[i])) }
        }
    }

    public static func backward(_ n: Int, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                engine: Engine = .default) {
        Parallel.forRanges(n, threads: engine.threads, minPerThread: 1 << 16) { part in
            for i in part { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        }
    }
}
