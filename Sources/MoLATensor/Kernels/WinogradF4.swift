/// Winograd F(4×4, 3×3): each 4×4 block of output pixels from a 6×6 block of input, 36
/// products per channel pair instead of direct convolution's 144 (4× fewer multiplies,
/// against F(2×2)'s 2.25×). The Toom–Cook points are 0, ±1, ±2 and ∞ (Lavin & Gray,
/// 2015), the set whose float32 error stays within a few ulps of the sum for these
/// kernels (the bound is tested against float64 on every ResNet layer shape):
///
///   Bᵀ = [4  0 −5  0 1 0;  0 −4 −4  1 1 0;  0 4 −4 −1 1 0;
///         0 −2 −1  2 1 0;  0  2 −1 −2 1 0;  0 4  0 −5 0 1]
///   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; ¹⁄₂₄ ¹⁄₁₂ ⅙; ¹⁄₂₄ −¹⁄₁₂ ⅙; 0 0 1]
///   Aᵀ = [1 1 1 1 1 0;  0 1 −1 2 −2 0;  0 1 1 4 4 0;  0 1 −1 8 −8 1]
///
/// Each 2-D transform is the 1-D one over columns into a small scratch of vectors, then over rows.
enum WinogradF4: WinogradTile {
    static let side = 4
    typealias V = Winograd.V
    typealias Six = (V, V, V, V, V, V)

    /// Bᵀ·d for one column or row of the 6×6 input tile.
    @inline(__always)
    static func bt(_ d: Six) -> Six {
        let (d0, d1, d2, d3, d4, d5) = d
        let t1 = d4.addingProduct(-4, d2), t2 = d3.addingProduct(-4, d1)
        let t3 = d4 - d2, t4 = 2 * (d3 - d1)
        return (d4.addingProduct(4, d0).addingProduct(-5, d2), t1 + t2, t1 - t2, t3 + t4, t3 - t4, d5.addingProduct(4, d1).addingProduct(-5, d3))
    }

    /// Aᵀ·m: four outputs of six transformed-domain values.
    @inline(__always)
    static func at(_ m: Six) -> (V, V, V, V) {
        let a = m.1 + m.2, b = m.1 - m.2, c = m.3 + m.4, d = m.3 - m.4
        return (m.0 + a + c, b.addingProduct(2, d), a.addingProduct(4, c), b.addingProduct(8, d) + m.5)
    }

    /// A·y, the adjoint of `at`: six transformed-domain values of four output gradients.
    @inline(__always)
    static func a(_ y0: V, _ y1: V, _ y2: V, _ y3: V) -> Six {
        let e = y0 + y2, o = y1 + y3, e4 = y0.addingProduct(4, y2), o4 = (2 * y1).addingProduct(8, y3)
        return (y0, e + o, e - o, e4 + o4, e4 - o4, y3)
    }

    /// G·(g0, g1, g2).
    @inline(__always)
    static func gt(_ g0: Float, _ g1: Float, _ g2: Float) -> (Float, Float, Float, Float, Float, Float) {
        let even = g0 + g2, odd = g1
        return (g0 / 4, -(even + odd) / 6, -(even - odd) / 6, g0 / 24 + g1 / 12 + g2 / 6, g0 / 24 - g1 / 12 + g2 / 6, g2)
    }

    /// Gᵀ·e, the adjoint of `gt`.
    @inline(__always)
    static func gAdjoint(_ e: (Float, Float, Float, Float, Float, Float)) -> (Float, Float, Float) {
        let s12 = e.1 + e.2, d12 = e.2 - e.1, s34 = e.3 + e.4, d34 = e.3 - e.4
        return (e.0 / 4 - s12 / 6 + s34 / 24, d12 / 6 + d34 / 12, -s12 / 6 + s34 / 6 + e.5)
    }

    static func transformFilter(_ g: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, stride: Int) {
        // G·g column by column (6×3), then ·Gᵀ row by row.
        let c0 = gt(g[0], g[3], g[6]), c1 = gt(g[1], g[4], g[7]), c2 = gt(g[2], g[5], g[8])
        @inline(__always) func row(_ i: Int, _ t0: Float, _ t1: Float, _ t2: Float) {
            let r = gt(t0, t1, t2)
            u[(i * 6 + 0) * stride] = r.0; u[(i * 6 + 1) * stride] = r.1; u[(i * 6 + 2) * stride] = r.2
            u[(i * 6 + 3) * stride] = r.3; u[(i * 6 + 4) * stride] = r.4; u[(i * 6 + 5) * stride] = r.5
        }
        row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2)
        row(3, c0.3, c1.3, c2.3); row(4, c0.4, c1.4, c2.4); row(5, c0.5, c1.5, c2.5)
    }

    static func filterGradient(_ u: UnsafePointer<Float>, into g: UnsafeMutablePointer<Float>) {
        // Gᵀ·dU column by column (3×6), then ·G row by row (3×3).
        @inline(__always) func column(_ j: Int) -> (Float, Float, Float) { gAdjoint((u[j], u[6 + j], u[12 + j], u[18 + j], u[24 + j], u[30 + j])) }
        let c = (column(0), column(1), column(2), column(3), column(4), column(5))
        let r0 = gAdjoint((c.0.0, c.1.0, c.2.0, c.3.0, c.4.0, c.5.0))
        let r1 = gAdjoint((c.0.1, c.1.1, c.2.1, c.3.1, c.4.1, c.5.1))
        let r2 = gAdjoint((c.0.2, c.1.2, c.2.2, c.3.2, c.4.2, c.5.2))
        g[0] = r0.0; g[1] = r0.1; g[2] = r0.2
        g[3] = r1.0; g[4] = r1.1; g[5] = r1.2
        g[6] = r2.0; g[7] = r2.1; g[8] = r2.2
    }

    static func transformInput(x: UnsafePointer<Float>, _ t: Winograd.Tiling, c: Int, tiles: Range<Int>, block: Int, into v: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 36) { offsets in
            withUnsafeTemporaryAllocation(of: V.self, capacity: 36) { scratch in
                let o = offsets.baseAddress!, tmp = scratch.baseAddress!
                for (i, tile) in tiles.enumerated() {
                    t.inputOffsets(tile, channels: c, into: o)
                    var ch = 0
                    while ch < c {
                        @inline(__always) func d(_ a: Int, _ b: Int) -> V {
                            let off = o[a * 6 + b]
                            return off < 0 ? V() : UnsafeRawPointer(x + off + ch).loadUnaligned(as: V.self)
                        }
                        for b in 0..<6 {  // Bᵀ·d, column b
                            let r = bt((d(0, b), d(1, b), d(2, b), d(3, b), d(4, b), d(5, b)))
                            tmp[b] = r.0; tmp[6 + b] = r.1; tmp[12 + b] = r.2; tmp[18 + b] = r.3; tmp[24 + b] = r.4; tmp[30 + b] = r.5
                        }
                        for a in 0..<6 {  // ·B, row a
                            let r = bt((tmp[a * 6], tmp[a * 6 + 1], tmp[a * 6 + 2], tmp[a * 6 + 3], tmp[a * 6 + 4], tmp[a * 6 + 5]))
                            Winograd.store(v, (a * 6 + 0) * block + i, c, ch, r.0)
                            Winograd.store(v, (a * 6 + 1) * block + i, c, ch, r.1)
                            Winograd.store(v, (a * 6 + 2) * block + i, c, ch, r.2)
                            Winograd.store(v, (a * 6 + 3) * block + i, c, ch, r.3)
                            Winograd.store(v, (a * 6 + 4) * block + i, c, ch, r.4)
                            Winograd.store(v, (a * 6 + 5) * block + i, c, ch, r.5)
                        }
                        ch += 8
                    }
                }
            }
        }
    }

    static func transformOutput(_ m: UnsafePointer<Float>, _ t: Winograd.Tiling, k: Int, tiles: Range<Int>, block: Int, into y: UnsafeMutablePointer<Float>) {
        let (h, w) = (t.h, t.w)
        withUnsafeTemporaryAllocation(of: V.self, capacity: 24) { scratch in
            let tmp = scratch.baseAddress!
            for (i, tile) in tiles.enumerated() {
                let (n, oy, ox) = t.origin(tile)
                let columns = min(4, w - ox)
                var ch = 0
                while ch < k {
                    @inline(__always) func mm(_ xi: Int) -> V { UnsafeRawPointer(m + (xi * block + i) * k + ch).loadUnaligned(as: V.self) }
                    for j in 0..<6 {  // Aᵀ·M, column j
                        let r = at((mm(j), mm(6 + j), mm(12 + j), mm(18 + j), mm(24 + j), mm(30 + j)))
                        tmp[j] = r.0; tmp[6 + j] = r.1; tmp[12 + j] = r.2; tmp[18 + j] = r.3
                    }
                    for a in 0..<min(4, h - oy) {  // ·A, output row a, written where it is inside the image
                        let r = at((tmp[a * 6], tmp[a * 6 + 1], tmp[a * 6 + 2], tmp[a * 6 + 3], tmp[a * 6 + 4], tmp[a * 6 + 5]))
                        let p = UnsafeMutableRawPointer(y + ((n * h + oy + a) * w + ox) * k + ch)
                        p.storeBytes(of: r.0, as: V.self)
                        if columns > 1 { p.storeBytes(of: r.1, toByteOffset: 4 * k, as: V.self) }
                        if columns > 2 { p.storeBytes(of: r.2, toByteOffset: 8 * k, as: V.self) }
                        if columns > 3 { p.storeBytes(of: r.3, toByteOffset: 12 * k, as: V.self) }
                    }
                    ch += 8
                }
            }
        }
    }

    static func transformGradient(_ dy: UnsafePointer<Float>, _ t: Winograd.Tiling, k: Int, tiles: Range<Int>, block: Int,
                                  into dm: UnsafeMutablePointer<Float>) {
        let (h, w) = (t.h, t.w)
        withUnsafeTemporaryAllocation(of: V.self, capacity: 24) { scratch in
            let tmp = scratch.baseAddress!
            for (i, tile) in tiles.enumerated() {
                let (n, oy, ox) = t.origin(tile)
                let (rows, columns) = (min(4, h - oy), min(4, w - ox))
                var ch = 0
                while ch < k {
                    @inline(__always) func ld(_ a: Int, _ b: Int) -> V {
                        a < rows && b < columns ? UnsafeRawPointer(dy + ((n * h + oy + a) * w + ox + b) * k + ch).loadUnaligned(as: V.self) : V()
                    }
                    for b in 0..<4 {  // A·dy, column b (6×4)
                        let r = a(ld(0, b), ld(1, b), ld(2, b), ld(3, b))
                        tmp[b] = r.0; tmp[4 + b] = r.1; tmp[8 + b] = r.2; tmp[12 + b] = r.3; tmp[16 + b] = r.4; tmp[20 + b] = r.5
                    }
                    for r in 0..<6 {  // ·Aᵀ, row r (6×6)
                        let e = a(tmp[r * 4], tmp[r * 4 + 1], tmp[r * 4 + 2], tmp[r * 4 + 3])
                        Winograd.store(dm, (r * 6 + 0) * block + i, k, ch, e.0)
                        Winograd.store(dm, (r * 6 + 1) * block + i, k, ch, e.1)
                        Winograd.store(dm, (r * 6 + 2) * block + i, k, ch, e.2)
                        Winograd.store(dm, (r * 6 + 3) * block + i, k, ch, e.3)
                        Winograd.store(dm, (r * 6 + 4) * block + i, k, ch, e.4)
                        Winograd.store(dm, (r * 6 + 5) * block + i, k, ch, e.5)
                    }
                    ch += 8
                }
            }
        }
    }
}
