import CZlib
import Foundation
import Testing
import MoLAData

/// The Swift inflater against zlib's deflate, on every block type zlib makes, and on
/// damaged streams, which must give an error (never a crash or a silent wrong answer).
@Suite struct InflateTests {
    static func sample(_ kind: Int, _ count: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix(seed)
        switch kind {
        case 0: return (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) }           // incompressible
        case 1: return (0..<count).map { i in UInt8(truncatingIfNeeded: i / 37) }                // long runs
        case 2: return (0..<count).map { i in i % 5 == 0 ? UInt8(truncatingIfNeeded: g.next() % 4) : 0 } // sparse
        default:                                                                                  // text-like repeats
            let words = (0..<50).map { _ in (0..<(3 + Int(g.next() % 8))).map { _ in UInt8(97 + g.next() % 26) } }
            var out: [UInt8] = []
            while out.count < count { out += words[Int(g.next() % 50)] + [32] }
            return Array(out.prefix(count))
        }
    }

    func inflate(_ stream: [UInt8], size: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        _ = try stream.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try Zlib.inflateRaw(s, size: size, into: $0) } }
        return out
    }

    @Test func matchesZlibOnEveryLevelAndStrategy() throws {
        let strategies = [Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED]
        for kind in 0..<4 {
            for size in [0, 1, 100, 70_000, 300_001] {
                let data = Self.sample(kind, size, seed: UInt64(kind * 1000 + size))
                for level: Int32 in [0, 1, 6, 9] {
                    for strategy in strategies {
                        let stream = rawDeflate(data, level: level, strategy: strategy)
                        #expect(try inflate(stream, size: data.count) == data, "kind \(kind) size \(size) level \(level) strategy \(strategy)")
                    }
                }
            }
        }
    }

    @Test func gunzipsFilesOfOneOrSeveralMembers() throws {
        let a = Self.sample(3, 50_000, seed: 1), b = Self.sample(1, 20_000, seed: 2)
        #expect(try gzip(a).withUnsafeBytes { try Zlib.inflate($0) } == a)
        #expect(try (gzip(a) + gzip(b)).withUnsafeBytes { try Zlib.inflate($0) } == a + b)
    }

    @Test func damagedStreamsGetTheSameVerdictAsZlib() throws {
        // Deflate has no checksum: a damaged stream may still decode (zip's CRC catches
        // that). The inflater must never crash, and must accept exactly what zlib accepts,
        // with the same bytes.
        var g = SplitMix(99)
        var errors = 0
        for trial in 0..<3000 {
            let data = Self.sample(trial % 4, 2000 + trial % 3000, seed: UInt64(trial))
            var stream = rawDeflate(data, level: [1, 6, 9][trial % 3], strategy: [Z_DEFAULT_STRATEGY, Z_RLE, Z_FIXED][trial % 3])
            switch trial % 3 {
            case 0: stream[Int(g.next() % UInt64(stream.count))] ^= UInt8(1 << (g.next() % 8))  // one bit flipped
            case 1: stream = Array(stream.prefix(Int(g.next() % UInt64(stream.count))))       // cut short
            default: for _ in 0..<4 { stream[Int(g.next() % UInt64(stream.count))] = UInt8(truncatingIfNeeded: g.next()) }
            }
            let ours = try? inflate(stream, size: data.count)
            let zlib = zlibInflateRaw(stream, size: data.count)
            #expect(ours == zlib, "trial \(trial): ours \(ours == nil ? "failed" : "decoded"), zlib \(zlib == nil ? "failed" : "decoded")")
            if ours == nil { errors += 1 }
        }
        #expect(errors > 1500)  // most damage is detected by the format itself
    }

    @Test func wrongExpectedSizesAreErrors() throws {
        let data = Self.sample(3, 10_000, seed: 5)
        let stream = rawDeflate(data, level: 6, strategy: Z_DEFAULT_STRATEGY)
        #expect(throws: ZlibFailure.self) { try inflate(stream, size: data.count - 1) }
        #expect(throws: ZlibFailure.self) { try inflate(stream, size: data.count + 1) }
    }
}

/// A tiny deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
