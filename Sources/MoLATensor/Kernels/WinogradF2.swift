/// Winograd F(2×2, 3×3): each 2×2 block of output pixels from a 4×4 block of input, 16
/// products per channel pair instead of 36 (2.25× fewer multiplies). With d a 4×4 input
/// tile and g a 3×3 filter (Lavin & Gray, 2015):
///   V = Bᵀ·d·B,  U = G·g·Gᵀ,  Y = Aᵀ·(Σ_c U ⊙ V)·A,
///   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
///   Aᵀ = [1 1 1 0; 0 1 −1 −1].
/// The transforms are additions and halves only: exact enough in float32 for any layer.
enum WinogradF2: WinogradTile {
    static let side = 2
    typealias V = Winograd.V

    /// The 1-D input transform Bᵀ·(d0, d1, d2, d3).
    @inline(__always)
    static func bt(_ d0: V, _ d1: V, _ d2: V, _ d3: V) -> (V, V, V, V) { (d0 - d2, d1 + d2, d2 - d1, d1 - d3) }

    /// The 1-D output transform Aᵀ·(m0, m1, m2, m3).
    @inline(__always)
    static func at(_ m0: V, _ m1: V, _ m2: V, _ m3: V) -> (V, V) { (m0 + m1 + m2, m1 - m2 - m3) }

    static func transformFilter(_ g: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, stride: Int) {
        // G·g (4×3, column by column), then ·Gᵀ row by row.
        for i in 0..<4 {
            @inline(__always) func t(_ kx: Int) -> Float {
                switch i {
                case 0: return g[kx]
                case 1: return 0.5 * (g[kx] + g[3 + kx] + g[6 + kx])
                case 2: return 0.5 * (g[kx] - g[3 + kx] + g[6 + kx])
                default: return g[6 + kx]
                }
            }
            let (t0, t1, t2) = (t(0), t(1), t(2))
            u[(i * 4 + 0) * stride] = t0
            u[(i * 4 + 1) * stride] = 0.5 * (t0 + t1 + t2)
            u[(i * 4 + 2) * stride] = 0.5 * (t0 - t1 + t2)
            u[(i * 4 + 3) * stride] = t2
        }
    }

    static func filterGradient(_ u: UnsafePointer<Float>, into g: UnsafeMutablePointer<Float>) {
        // Gᵀ·dU (3×4), then ·G (3×3). Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
        for ky in 0..<3 {
            @inline(__always) func r(_ j: Int) -> Float {
                switch ky {
                case 0: return u[j] + 0.5 * (u[4 + j] + u[8 + j])
                case 1: return 0.5 * (u[4 + j] - u[8 + j])
                default: return 0.5 * (u[4 + j] + u[8 + j]) + u[12 + j]
                }
            }
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3))
            g[ky * 3] = r0 + 0.5 * (r1 + r2)
            g[ky * 3 + 1] = 0.5 * (r1 - r2)
            g[ky * 3 + 2] = 0.5 * (r1 + r2) + r3
        }
    }

    static func transformInput(x: UnsafePointer<Float>, _ t: Winograd.Tiling, c: Int, tiles: Range<Int>, block: Int, into v: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 16) { offsets in
            let o = offsets.baseAddress!
            for (i, tile) in tiles.enumerated() {
                t.inputOffsets(tile, channels: c, into: o)
                var ch = 0
                while ch < c {
                    @inline(__always) func d(_ a: Int, _ b: Int) -> V {
                        let off = o[a * 4 + b]
                        return off < 0 ? V() : UnsafeRawPointer(x + off + ch).loadUnaligned(as: V.self)
                    }
                    // Bᵀ·d column by column, then ·B row by row.
                    let c0 = bt(d(0, 0), d(1, 0), d(2, 0), d(3, 0)), c1 = bt(d(0, 1), d(1, 1), d(2, 1), d(3, 1))
                    let c2 = bt(d(0, 2), d(1, 2), d(2, 2), d(3, 2)), c3 = bt(d(0, 3), d(1, 3), d(2, 3), d(3, 3))
                    @inline(__always) func row(_ a: Int, _ e: (V, V, V, V)) {
                        let r = bt(e.0, e.1, e.2, e.3)
                        Winograd.store(v, (a * 4 + 0) * block + i, c, ch, r.0)
                        Winograd.store(v, (a * 4 + 1) * block + i, c, ch, r.1)
                        Winograd.store(v, (a * 4 + 2) * block + i, c, ch, r.2)
                        Winograd.store(v, (a * 4 + 3) * block + i, c, ch, r.3)
                    }
                    row(0, (c0.0, c1.0, c2.0, c3.0)); row(1, (c0.1, c1.1, c2.1, c3.1))
                    row(2, (c0.2, c1.2, c2.2, c3.2)); row(3, (c0.3, c1.3, c2.3, c3.3))
                    ch += 8
                }
            }
        }
    }

    static func transformOutput(_ m: UnsafePointer<Float>, _ t: Winograd.Tiling, k: Int, tiles: Range<Int>, block: Int, into y: UnsafeMutablePointer<Float>) {
        let (h, w) = (t.h, t.w)
        for (i, tile) in tiles.enumerated() {
            let (n, oy, ox) = t.origin(tile)
            var ch = 0
            while ch < k {
                @inline(__always) func mm(_ xi: Int) -> V { UnsafeRawPointer(m + (xi * block + i) * k + ch).loadUnaligned(as: V.self) }
                // Aᵀ·M column by column, then ·A row by row.
                let c0 = at(mm(0), mm(4), mm(8), mm(12)), c1 = at(mm(1), mm(5), mm(9), mm(13))
                let c2 = at(mm(2), mm(6), mm(10), mm(14)), c3 = at(mm(3), mm(7), mm(11), mm(15))
                @inline(__always) func put(_ a: Int, _ r: (V, V)) {
                    guard oy + a < h else { return }
                    let p = y + ((n * h + oy + a) * w + ox) * k + ch
                    UnsafeMutableRawPointer(p).storeBytes(of: r.0, as: V.self)
                    if ox + 1 < w { UnsafeMutableRawPointer(p + k).storeBytes(of: r.1, as: V.self) }
                }
                put(0, at(c0.0, c1.0, c2.0, c3.0))
                put(1, at(c0.1, c1.1, c2.1, c3.1))
                ch += 8
            }
        }
    }

    /// dM = A·dy·Aᵀ, with A·(y0, y1) = (y0, y0 + y1, y0 − y1, −y1).
    static func transformGradient(_ dy: UnsafePointer<Float>, _ t: Winograd.Tiling, k: Int, tiles: Range<Int>, block: Int,
                                  into dm: UnsafeMutablePointer<Float>) {
        let (h, w) = (t.h, t.w)
        for (i, tile) in tiles.enumerated() {
            let (n, oy, ox) = t.origin(tile)
            let right = ox + 1 < w, lower = oy + 1 < h
            let p0 = dy + ((n * h + oy) * w + ox) * k
            let p1 = p0 + w * k
            var ch = 0
            while ch < k {
                @inline(__always) func ld(_ p: UnsafePointer<Float>, _ ok: Bool) -> V { ok ? UnsafeRawPointer(p + ch).loadUnaligned(as: V.self) : V() }
                let (y00, y01) = (ld(p0, true), ld(p0 + k, right))
                let (y10, y11) = (ld(p1, lower), ld(p1 + k, lower && right))
                // A·dy: rows (4×2), then ·Aᵀ: columns (4×4).
                @inline(__always) func row(_ a: Int, _ r0: V, _ r1: V) {
                    Winograd.store(dm, (a * 4 + 0) * block + i, k, ch, r0)
                    Winograd.store(dm, (a * 4 + 1) * block + i, k, ch, r0 + r1)
                    Winograd.store(dm, (a * 4 + 2) * block + i, k, ch, r0 - r1)
                    Winograd.store(dm, (a * 4 + 3) * block + i, k, ch, -r1)
                }
                row(0, y00, y01); row(1, y00 + y10, y01 + y11); row(2, y00 - y10, y01 - y11); row(3, -y10, -y11)
                ch += 8
            }
        }
    }
}
