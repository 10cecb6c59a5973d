import Foundation

/// A small, fast, seedable and splittable random number generator (SplitMix64).
///
/// Every random decision in the project (initialisation, shuffling, augmentation,
/// validation carving) draws from one of these, so the same seed gives the same numbers
/// on every machine. `split()` derives an independent stream, e.g. one per thread or per
/// epoch, without touching the parent's sequence beyond one draw.
public struct RandomGenerator: RandomNumberGenerator, Codable, Equatable, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for a named sub-stream: the same (seed, stream) pair always gives the
    /// same sequence, and different streams are statistically independent.
    public init(seed: UInt64, stream: UInt64) {
        var g = RandomGenerator(seed: seed ^ 0x6A09_E667_F3BC_C909)
        for _ in 0..<2 { _ = g.next() }
        state = g.next() &+ Self.mix(stream &* 0x9E37_79B9_7F4A_7C15 &+ 1)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An independent generator; advances this one by one draw.
    public mutating func split() -> RandomGenerator {
        RandomGenerator(seed: next(), stream: 0x5EED)
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * nextFloat()
    }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = max(nextDouble(), 1e-300), u2 = nextDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<bound, unbiased (Lemire's method).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// A Fisher-Yates shuffle whose result depends only on this generator's state
    /// (the standard library's `shuffle(using:)` makes no such promise across versions).
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, nextInt(below: i + 1))
        }
    }

    /// A random permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }
}
