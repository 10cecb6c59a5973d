import Foundation
import MoLAData
import MoLASupport
import Testing

@Suite struct ZlibTests {
    @Test func chunkedDeflateIsOneValidStreamAndInflatesInParallel() throws {
        var rng = SystemRandomNumberGenerator()
        // Compressible but not trivial: runs of random bytes, an odd size across chunk edges.
        let data = (0..<(3 * 65536 + 1234)).map { i in i % 97 < 60 ? UInt8(truncatingIfNeeded: i / 97) : UInt8.random(in: 0...255, using: &rng) }
        for compression in Zlib.Compression.allCases {
            let pieces = data.withUnsafeBytes { Zlib.deflateChunked($0, chunkSize: 65536, compression: compression) }
            #expect(pieces.count == 4)
            let stream = Array(pieces.joined())
            // One stream, inflated front to back (as any zip reader does) ...
            let whole = try stream.withUnsafeBytes { try Zlib.inflate($0, container: .raw) }
            #expect(whole == data)
            // ... and chunk by chunk in parallel, with a skipped head (inside the first chunk,
            // or reaching into the second) returned apart and the CRC combined over chunks.
            for skip in [0, 128, 65536 + 100] {
                var out = [UInt8](repeating: 0, count: data.count - skip)
                let (head, crc) = try stream.withUnsafeBytes { s in
                    try out.withUnsafeMutableBytes {
                        try Zlib.inflateRaw(s, size: data.count, skip: skip, into: $0, chunkSizes: pieces.map(\.count), chunkSize: 65536)
                    }
                }
                #expect(head + out == data)
                #expect(crc == data.withUnsafeBytes { Zlib.crc32($0) })
            }
        }
    }

    @Test func gzipMembersAreJoinedAndTruncationIsReported() throws {
        let a = Array("hello ".utf8), b = Array("world".utf8)
        let joined = gzip(a) + gzip(b)
        #expect(try joined.withUnsafeBytes { try Zlib.inflate($0) } == a + b)
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }
        let truncated = Array(gzip(big).dropLast(200))
        #expect(throws: ZlibFailure.self) { try truncated.withUnsafeBytes { try Zlib.inflate($0) } }
    }

    @Test func inflateRawRejectsWrongSizes() throws {
        let data = [UInt8](repeating: 7, count: 5000)
        let stream = Array(data.withUnsafeBytes { Zlib.deflateChunked($0, chunkSize: 1 << 20, compression: .fast) }.joined())
        var short = [UInt8](repeating: 0, count: 4000)
        #expect(throws: ZlibFailure.self) { try stream.withUnsafeBytes { s in try short.withUnsafeMutableBytes { _ = try Zlib.inflateRaw(s, size: 4000, into: $0) } } }
        var long = [UInt8](repeating: 0, count: 6000)
        #expect(throws: ZlibFailure.self) { try stream.withUnsafeBytes { s in try long.withUnsafeMutableBytes { _ = try Zlib.inflateRaw(s, size: 6000, into: $0) } } }
    }
}

@Suite struct NPYTests {
    @Test func headerRoundTripsAndAlignsTo64Bytes() throws {
        let h = NPYHeader(kind: .unsigned, itemSize: 1, shape: [60000, 28, 28, 1])
        let bytes = h.encoded()
        #expect(bytes.count % 64 == 0)
        let back = try bytes.withUnsafeBytes { try NPYHeader.parse($0) }
        #expect(back.shape == [60000, 28, 28, 1] && back.descr == "|u1" && !back.fortranOrder && back.headerLength == bytes.count)
        let one = NPYHeader(kind: .signed, itemSize: 8, shape: [5]).encoded()
        #expect(String(decoding: one, as: UTF8.self).contains("'shape': (5,)"))
    }

    @Test func parsesVersion2BigEndianAndFortranHeaders() throws {
        let dict = "{'descr': '>i4', 'fortran_order': True, 'shape': (3, 2), }"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0]
        let len = UInt32(dict.utf8.count)
        bytes += [UInt8(len & 0xff), UInt8(len >> 8 & 0xff), 0, 0] + Array(dict.utf8)
        let h = try bytes.withUnsafeBytes { try NPYHeader.parse($0) }
        #expect(h.kind == .signed && h.itemSize == 4 && h.bigEndian && h.fortranOrder && h.shape == [3, 2])
        let data: [UInt8] = [0, 0, 1, 2]  // big-endian 258
        #expect(data.withUnsafeBytes { h.integer($0, 0) } == 258)
    }

    @Test func rejectsGarbage() {
        #expect(throws: NPYFailure.self) { try Array("not numpy at all".utf8).withUnsafeBytes { try NPYHeader.parse($0) } }
    }
}

@Suite struct ZipTests {
    @Test func writerOutputReadsBackAndIsByteIdentical() throws {
        let dir = TempDir()
        func make(_ name: String) throws -> (Int, String) {
            let z = try ZipFileWriter(path: dir.file(name))
            let payload = Array("some member data".utf8)
            try z.add(name: "a.npy", method: 0, crc32: payload.withUnsafeBytes { Zlib.crc32($0) }, size: payload.count, pieces: [payload])
            let big = [UInt8](repeating: 3, count: 300_000)
            let pieces = big.withUnsafeBytes { Zlib.deflateChunked($0, chunkSize: 65536, compression: .small) }
            try z.add(name: "b.npy", method: 8, crc32: big.withUnsafeBytes { Zlib.crc32($0) }, size: big.count, pieces: pieces)
            return try z.finish()
        }
        let (n1, h1) = try make("one.zip"), (n2, h2) = try make("two.zip")
        #expect(n1 == n2 && h1 == h2)
        let archive = try ZipArchive(path: dir.file("one.zip"))
        #expect(archive.members.map(\.name) == ["a.npy", "b.npy"])
        #expect(try archive.extract(archive.member("a.npy")!) == Array("some member data".utf8))
        #expect(try archive.extract(archive.member("b.npy")!) == [UInt8](repeating: 3, count: 300_000))
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["one.zip", "two.zip"])
    }

    @Test func readsNumpyWrittenArchivesIncludingZip64Headers() throws {
        let dir = TempDir()
        let path = dir.file("np.npz")
        _ = try python("""
            import numpy as np
            np.savez_compressed('\(path)', train_images=np.arange(2*3*4, dtype=np.uint8).reshape(2,3,4),
                                train_labels=np.array([[1],[0]], dtype=np.uint8))
            np.savez('\(dir.file("stored.npz"))', images=np.zeros((1,2,2), np.uint8), labels=np.array([5], np.int64))
            """)
        let a = try ZipArchive(path: path)
        let imgs = try a.extract(a.member("train_images.npy")!)
        let h = try imgs.withUnsafeBytes { try NPYHeader.parse($0) }
        #expect(h.shape == [2, 3, 4])
        #expect(Array(imgs[h.headerLength...]) == (0..<24).map(UInt8.init))
        let stored = try ZipArchive(path: dir.file("stored.npz"))
        #expect(stored.members.allSatisfy { $0.method == 0 })
        #expect(try stored.extract(stored.member("labels.npy")!).suffix(8) == [5, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func truncatedAndCorruptArchivesNameTheFile() throws {
        let dir = TempDir()
        let z = try ZipFileWriter(path: dir.file("ok.zip"))
        let data = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try z.add(name: "x.npy", method: 8, crc32: data.withUnsafeBytes { Zlib.crc32($0) }, size: data.count,
                  pieces: data.withUnsafeBytes { Zlib.deflateChunked($0, chunkSize: 1 << 20, compression: .fast) })
        _ = try z.finish()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("ok.zip"))))
        let truncated = dir.write("truncated.zip", Array(bytes.prefix(bytes.count / 2)))
        #expect { try ZipArchive(path: truncated) } throws: { ($0 as? DataError)?.file == truncated }
        var flipped = bytes
        flipped[100] ^= 0xFF
        let corrupt = dir.write("corrupt.zip", flipped)
        let archive = try ZipArchive(path: corrupt)
        #expect { try archive.extract(archive.member("x.npy")!) } throws: { e in
            guard let e = e as? DataError else { return false }
            return e.file == corrupt && e.location == "member x.npy"
        }
    }
}

@Suite struct PNGTests {
    let w = 11, h = 7  // odd sizes exercise partial bytes and every interlace pass

    func decode(_ png: [UInt8], channels: Int) throws -> RawImage {
        try png.withUnsafeBytes { try PNGCodec.decode($0, channels: channels) }
    }

    @Test(arguments: [1, 2, 4, 8, 16])
    func greyAtEveryBitDepth(bits: Int) throws {
        let maxV = (1 << bits) - 1
        let samples = (0..<(w * h)).map { ($0 * 37) % (maxV + 1) }
        for interlaced in [false, true] {
            let img = try decode(PNGFixture.encode(width: w, height: h, colorType: 0, bitDepth: UInt8(bits),
                                                   interlaced: interlaced, samples: samples), channels: 1)
            #expect(img.width == w && img.height == h && img.channels == 1)
            // Low depths expand by bit replication (= v·255/max); 16-bit scales linearly.
            let expected = samples.map { UInt8((Double($0) * 255 / Double(maxV)).rounded()) }
            #expect(img.pixels == expected, "bit depth \(bits), interlaced \(interlaced)")
        }
    }

    @Test func rgbInterlacedAndPlainAgree() throws {
        let samples = (0..<(w * h * 3)).map { ($0 * 53) % 256 }
        let plain = try decode(PNGFixture.encode(width: w, height: h, colorType: 2, bitDepth: 8, samples: samples), channels: 3)
        let inter = try decode(PNGFixture.encode(width: w, height: h, colorType: 2, bitDepth: 8, interlaced: true, samples: samples), channels: 3)
        #expect(plain.pixels == samples.map(UInt8.init))
        #expect(inter.pixels == plain.pixels)
        let rgb16 = try decode(PNGFixture.encode(width: w, height: h, colorType: 2, bitDepth: 16, samples: samples.map { $0 * 257 }), channels: 3)
        #expect(rgb16.pixels == plain.pixels)
    }

    @Test func alphaIsDroppedAsPillowDoes() throws {
        // Grey+alpha and RGBA: the stored colour stays, transparent or not (Pillow's
        // convert("L") / convert("RGB") drop alpha without compositing).
        let ga = (0..<(w * h)).flatMap { i in [200, i % 2 == 0 ? 255 : 0] }
        let g = try decode(PNGFixture.encode(width: w, height: h, colorType: 4, bitDepth: 8, samples: ga), channels: 1)
        #expect(g.pixels == [UInt8](repeating: 200, count: w * h))
        let rgba = (0..<(w * h)).flatMap { i in [10, 20, 30, i % 3 == 0 ? 255 : 0] }
        let c = try decode(PNGFixture.encode(width: w, height: h, colorType: 6, bitDepth: 8, samples: rgba), channels: 3)
        #expect(c.pixels == (0..<(w * h)).flatMap { _ in [UInt8(10), 20, 30] })
        let grey = try decode(PNGFixture.encode(width: w, height: h, colorType: 6, bitDepth: 8, samples: rgba), channels: 1)
        #expect(grey.pixels == [UInt8](repeating: ChannelConversion.luma(10, 20, 30), count: w * h))
    }

    @Test func paletteImagesAt4And8Bits() throws {
        let palette: [(UInt8, UInt8, UInt8)] = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (10, 20, 30)]
        let idx = (0..<(w * h)).map { $0 % 4 }
        for bits in [UInt8(2), 4, 8] {
            let img = try decode(PNGFixture.encode(width: w, height: h, colorType: 3, bitDepth: bits, samples: idx, palette: palette), channels: 3)
            #expect(img.pixels == idx.flatMap { [palette[$0].0, palette[$0].1, palette[$0].2] })
        }
    }

    @Test func greyBecomesRGBByRepetition() throws {
        let samples = (0..<(w * h)).map { $0 * 3 }
        let img = try decode(PNGFixture.encode(width: w, height: h, colorType: 0, bitDepth: 8, samples: samples), channels: 3)
        #expect(img.pixels == samples.flatMap { [UInt8($0), UInt8($0), UInt8($0)] })
    }

    @Test func damagedFilesGiveMessagesNotCrashes() throws {
        let good = PNGFixture.encode(width: w, height: h, colorType: 0, bitDepth: 8, samples: Array(repeating: 9, count: w * h))
        var badCRC = good
        badCRC[good.count - 20] ^= 0x55  // inside IDAT or its CRC
        let cases: [(String, [UInt8])] = [
            ("bad CRC", badCRC),
            ("truncated", Array(good.prefix(good.count / 2))),
            ("not a PNG", Array("GIF89a....".utf8)),
            ("empty", []),
        ]
        for (name, bytes) in cases {
            #expect(throws: PNGFailure.self, "\(name)") { try decode(bytes, channels: 1) }
        }
    }

    @Test func writesPNGsLibpngReadsBack() throws {
        let dir = TempDir()
        let img = RawImage(height: 3, width: 5, channels: 3, pixels: (0..<45).map { UInt8($0 * 5) })
        try PNGCodec.write(img, to: dir.file("x.png"))
        let back = try Data(contentsOf: URL(fileURLWithPath: dir.file("x.png"))).withUnsafeBytes { try PNGCodec.decode($0, channels: 3) }
        #expect(back == img)
    }
}
