/// A fast inflater for raw deflate streams (RFC 1951) whose output size is known, in pure
/// Swift: a 64-bit bit buffer refilled 8 bytes at a time, 10-bit lookup tables for Huffman
/// codes (longer codes decoded canonically), and 8-byte match copies. On shard data it runs
/// about twice as fast as the system zlib (1.2.13), which stays in use for compression and
/// for streams of unknown length.
///
/// Every read and write is bounds-checked against the buffers: damaged input throws, it
/// never reads or writes outside them.
struct Inflater {
    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    private static let tableBits = 10
    private static let tableMask = UInt64((1 << tableBits) - 1)

    /// A Huffman code: a lookup table for codes of up to `tableBits` bits (entry: symbol << 4
    /// | code length, 0 for longer codes) and the canonical counts and symbols for the rest.
    /// Storage is one allocation, freed by `deallocate`.
    private struct Huffman {
        let table: UnsafeMutablePointer<UInt16>
        let counts: UnsafeMutablePointer<UInt16>
        let symbols: UnsafeMutablePointer<UInt16>

        init() {
            let all = UnsafeMutablePointer<UInt16>.allocate(capacity: (1 << Inflater.tableBits) + 16 + 320)
            table = all
            counts = all + (1 << Inflater.tableBits)
            symbols = counts + 16
        }

        func deallocate() { table.deallocate() }

        /// Builds the code from code lengths; rejects over-subscribed sets, and incomplete
        /// ones except (as zlib) a literal or distance code of at most one 1-bit code.
        func build(_ lengths: UnsafeBufferPointer<UInt8>, allowIncomplete: Bool = true) throws {
            counts.update(repeating: 0, count: 16)
            var maxLength = 0
            for l in lengths { counts[Int(l)] += 1; maxLength = max(maxLength, Int(l)) }
            counts[0] = 0
            var left = 1
            for len in 1..<16 {
                left <<= 1
                left -= Int(counts[len])
                if left < 0 { throw Failure(message: "corrupt compressed data (over-subscribed code)") }
            }
            if left > 0 && (!allowIncomplete || maxLength > 1) { throw Failure(message: "corrupt compressed data (incomplete code)") }
            var offsets = [Int](repeating: 0, count: 16)
            for len in 1..<15 { offsets[len + 1] = offsets[len] + Int(counts[len]) }
            for (sym, l) in lengths.enumerated() where l != 0 {
                symbols[offsets[Int(l)]] = UInt16(sym)
                offsets[Int(l)] += 1
            }
            table.update(repeating: 0, count: 1 << Inflater.tableBits)
            // Canonical codes, bit-reversed (deflate sends them most significant bit first).
            var code = 0, k = 0
            for len in 1...15 {
                for _ in 0..<Int(counts[len]) {
                    if len <= Inflater.tableBits {
                        var rev = 0
                        for b in 0..<len where code & (1 << b) != 0 { rev |= 1 << (len - 1 - b) }
                        let entry = symbols[k] << 4 | UInt16(len)
                        var i = rev
                        while i < 1 << Inflater.tableBits { table[i] = entry; i += 1 << len }
                    }
                    code += 1; k += 1
                }
                code <<= 1
            }
        }
    }

    /// The input as a bit stream: a 64-bit buffer refilled 8 bytes at a time. Past the end
    /// it feeds zeros and counts them in `over`; consuming those means the data was cut.
    private struct Bits {
        let base: UnsafePointer<UInt8>?
        let count: Int
        var bits: UInt64 = 0
        var n = 0      // valid bits in `bits`
        var p = 0      // next input byte
        var over = 0   // zero bytes fed past the end

        @inline(__always) mutating func refill() {
            if p + 8 <= count {
                bits |= UnsafeRawPointer(base! + p).loadUnaligned(as: UInt64.self).littleEndian << UInt64(n)
                p += (63 - n) >> 3
                n |= 56
            } else {
                while n <= 56 {
                    if p < count { bits |= UInt64(base![p]) << UInt64(n); p += 1 } else { over += 1 }
                    n += 8
                }
            }
        }

        @inline(__always) mutating func take(_ k: Int) -> Int {
            let v = Int(truncatingIfNeeded: bits & ((1 << UInt64(k)) &- 1))
            bits >>= UInt64(k); n -= k
            return v
        }

        /// Bytes really consumed (whole bytes still buffered are not).
        var consumed: Int { p - (n / 8 - over) }
        var overrun: Bool { over * 8 > n }

        @inline(__always) mutating func decode(_ h: Huffman) throws -> Int {
            let e = h.table[Int(bits & Inflater.tableMask)]
            if e & 15 != 0 {
                bits >>= UInt64(e & 15); n -= Int(e & 15)
                return Int(e >> 4)
            }
            return try decodeLong(h)
        }

        /// A code longer than the table: walk the canonical code bit by bit.
        mutating func decodeLong(_ h: Huffman) throws -> Int {
            var code = 0, first = 0, index = 0
            for len in 1...15 {
                code |= take(1)
                let count = Int(h.counts[len])
                if code - count < first { return Int(h.symbols[index + (code - first)]) }
                index += count; first += count
                first <<= 1; code <<= 1
            }
            throw Failure(message: "corrupt compressed data (invalid code)")
        }
    }

    private static let lengthBase: [UInt16] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                               35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                               3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distBase: [UInt32] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
                                             513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    private static let distExtra: [UInt8] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
                                             8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    private static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    /// Inflates `input` into exactly `output.count` bytes; returns the input bytes consumed.
    /// A `partial` stream (a chunk ending in a flush, not the final block) may stop once
    /// the output is full and the input is used up.
    static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                        partial: Bool = false) throws -> Int {
        let lit = Huffman(), dist = Huffman()
        defer { lit.deallocate(); dist.deallocate() }
        // An empty output has no base address; nothing is ever written through it then.
        let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafeMutablePointer<UInt8>(bitPattern: 64)!
        let outCount = output.count
        var o = 0
        var b = Bits(base: input.baseAddress?.assumingMemoryBound(to: UInt8.self), count: input.count)
        let endedEarly = Failure(message: "compressed data ends early (truncated)")
        let tooMuch = Failure(message: "more data than the expected size")
        var lengths = [UInt8](repeating: 0, count: 320)
        while true {
            b.refill()
            let final = b.take(1) == 1
            let type = b.take(2)
            switch type {
            case 0:  // stored: give back whole buffered bytes, then copy
                b.n -= b.n % 8
                let buffered = b.n / 8 - b.over  // real bytes still in the buffer
                guard buffered >= 0 else { throw endedEarly }
                b.p -= buffered; b.over = 0; b.bits = 0; b.n = 0
                let p = b.p, src = b.base
                guard p + 4 <= b.count else { throw endedEarly }
                let len = Int(src![p]) | Int(src![p + 1]) << 8
                let nlen = Int(src![p + 2]) | Int(src![p + 3]) << 8
                guard len == ~nlen & 0xffff else { throw Failure(message: "corrupt compressed data (stored block length)") }
                guard p + 4 + len <= b.count else { throw endedEarly }
                guard o + len <= outCount else { throw tooMuch }
                if len > 0 { (out + o).update(from: src! + p + 4, count: len) }
                o += len; b.p = p + 4 + len
            case 1, 2:
                if type == 1 {
                    for i in 0..<144 { lengths[i] = 8 }
                    for i in 144..<256 { lengths[i] = 9 }
                    for i in 256..<280 { lengths[i] = 7 }
                    for i in 280..<288 { lengths[i] = 8 }
                    try lengths.withUnsafeBufferPointer { try lit.build(UnsafeBufferPointer(rebasing: $0[0..<288])) }
                    for i in 0..<32 { lengths[i] = 5 }  // 30 and 31 complete the code but are invalid
                    try lengths.withUnsafeBufferPointer { try dist.build(UnsafeBufferPointer(rebasing: $0[0..<32])) }
                } else {
                    try readDynamicCodes(&b, lit, dist, &lengths)
                }
                o = try decodeBlock(&b, lit, dist, out, o, outCount)
            default:
                throw Failure(message: "corrupt compressed data (invalid block type)")
            }
            if b.overrun { throw endedEarly }
            if final { break }
            if partial && o == outCount && b.consumed >= b.count { break }
        }
        guard o == outCount else { throw o < outCount ? Failure(message: "inflated \(o) bytes, expected \(outCount)") : tooMuch }
        return min(b.count, b.consumed + (b.n % 8 == 0 ? 0 : 1))
    }

    /// Decodes one block's symbols into `out` from position `o`; returns the new position.
    /// The bit buffer lives in locals here so it stays in registers; it is written back to
    /// `b` around the rare slow paths and at the end.
    private static func decodeBlock(_ b: inout Bits, _ lit: Huffman, _ dist: Huffman,
                                    _ out: UnsafeMutablePointer<UInt8>, _ start: Int, _ outCount: Int) throws -> Int {
        let tooMuch = Failure(message: "more data than the expected size")
        var o = start
        var bits = b.bits, n = b.n, p = b.p
        let base = b.base, count = b.count
        let litTable = lit.table, distTable = dist.table
        defer { b.bits = bits; b.n = n; b.p = p }
        while true {
            if p + 8 <= count {
                bits |= UnsafeRawPointer(base! + p).loadUnaligned(as: UInt64.self).littleEndian << UInt64(n)
                p += (63 - n) >> 3
                n |= 56
            } else {
                b.bits = bits; b.n = n; b.p = p
                b.refill()
                bits = b.bits; n = b.n; p = b.p
            }
            // ≥ 56 bits: up to three literals from the table, or a length, its extra bits and
            // a distance code.
            var sym: Int
            var e = litTable[Int(bits & tableMask)]
            if e & 15 == 0 {
                b.bits = bits; b.n = n; b.p = p
                sym = try b.decodeLong(lit)
                bits = b.bits; n = b.n
            } else {
                bits >>= UInt64(e & 15); n -= Int(e & 15)
                sym = Int(e >> 4)
                if sym < 256 {
                    guard o < outCount else { throw tooMuch }
                    out[o] = UInt8(truncatingIfNeeded: sym); o += 1
                    e = litTable[Int(bits & tableMask)]
                    if e & 15 == 0 || e >> 4 >= 256 { continue }
                    bits >>= UInt64(e & 15); n -= Int(e & 15)
                    guard o < outCount else { throw tooMuch }
                    out[o] = UInt8(truncatingIfNeeded: e >> 4); o += 1
                    e = litTable[Int(bits & tableMask)]
                    if e & 15 == 0 || e >> 4 >= 256 { continue }
                    bits >>= UInt64(e & 15); n -= Int(e & 15)
                    guard o < outCount else { throw tooMuch }
                    out[o] = UInt8(truncatingIfNeeded: e >> 4); o += 1
                    continue
                }
            }
            if sym < 256 {
                guard o < outCount else { throw tooMuch }
                out[o] = UInt8(truncatingIfNeeded: sym); o += 1
                continue
            }
            if sym == 256 { return o }
            let li = sym - 257
            guard li < 29 else { throw Failure(message: "corrupt compressed data (bad length code)") }
            let le = Int(lengthExtra[li])
            let length = Int(lengthBase[li]) + Int(truncatingIfNeeded: bits & ((1 << UInt64(le)) &- 1))
            bits >>= UInt64(le); n -= le
            var ds: Int
            let de = distTable[Int(bits & tableMask)]
            if de & 15 == 0 {
                b.bits = bits; b.n = n; b.p = p
                ds = try b.decodeLong(dist)
                bits = b.bits; n = b.n
            } else {
                bits >>= UInt64(de & 15); n -= Int(de & 15)
                ds = Int(de >> 4)
            }
            guard ds < 30 else { throw Failure(message: "corrupt compressed data (bad distance code)") }
            if n < 13 {
                b.bits = bits; b.n = n; b.p = p
                b.refill()
                bits = b.bits; n = b.n; p = b.p
            }
            let xe = Int(distExtra[ds])
            let distance = Int(distBase[ds]) + Int(truncatingIfNeeded: bits & ((1 << UInt64(xe)) &- 1))
            bits >>= UInt64(xe); n -= xe
            guard distance <= o else { throw Failure(message: "corrupt compressed data (distance too far back)") }
            guard o + length <= outCount else { throw tooMuch }
            let dst = out + o, src = out + o - distance
            if distance == 1 {
                dst.update(repeating: src.pointee, count: length)
            } else if distance >= 8 && o + length + 8 <= outCount {
                var k = 0
                while k < length {  // 8 bytes at a time; the source is ≥ 8 behind
                    UnsafeMutableRawPointer(dst + k).storeBytes(of: UnsafeRawPointer(src + k).loadUnaligned(as: UInt64.self), as: UInt64.self)
                    k += 8
                }
            } else {
                for k in 0..<length { dst[k] = src[k] }
            }
            o += length
        }
    }

    /// Reads a dynamic block's code lengths and builds its literal/length and distance codes.
    private static func readDynamicCodes(_ b: inout Bits, _ lit: Huffman, _ dist: Huffman, _ lengths: inout [UInt8]) throws {
        b.refill()
        let nlit = b.take(5) + 257, ndist = b.take(5) + 1, ncode = b.take(4) + 4
        guard nlit <= 286, ndist <= 30 else { throw Failure(message: "corrupt compressed data (bad code counts)") }
        for i in 0..<19 { lengths[i] = 0 }
        for i in 0..<ncode {
            if b.n < 3 { b.refill() }
            lengths[codeLengthOrder[i]] = UInt8(b.take(3))
        }
        try lengths.withUnsafeBufferPointer { try lit.build(UnsafeBufferPointer(rebasing: $0[0..<19]), allowIncomplete: false) }
        var all = [UInt8](repeating: 0, count: nlit + ndist)
        var i = 0
        while i < nlit + ndist {
            b.refill()
            let sym = try b.decode(lit)
            if sym < 16 { all[i] = UInt8(sym); i += 1; continue }
            var value: UInt8 = 0, times = 0
            switch sym {
            case 16:
                guard i > 0 else { throw Failure(message: "corrupt compressed data (repeat with no length)") }
                value = all[i - 1]; times = 3 + b.take(2)
            case 17: times = 3 + b.take(3)
            default: times = 11 + b.take(7)
            }
            guard i + times <= nlit + ndist else { throw Failure(message: "corrupt compressed data (too many lengths)") }
            for _ in 0..<times { all[i] = value; i += 1 }
        }
        guard all[256] != 0 else { throw Failure(message: "corrupt compressed data (no end-of-block code)") }
        try all.withUnsafeBufferPointer { a in
            try lit.build(UnsafeBufferPointer(rebasing: a[0..<nlit]))
            try dist.build(UnsafeBufferPointer(rebasing: a[nlit...]))
        }
    }
}
