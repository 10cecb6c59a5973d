import Testing
import MoLAData

@Suite struct ResizeTests {
    func resize(_ pixels: [UInt8], h: Int, w: Int, to out: ImageShape, _ filter: ResizeFilter = .auto) -> [UInt8] {
        var dst = [UInt8](repeating: 0, count: out.pixelCount)
        dst.withUnsafeMutableBufferPointer {
            Resampler(inHeight: h, inWidth: w, to: out, filter: filter)
                .apply(RawImage(height: h, width: w, channels: out.channels, pixels: pixels), into: $0.baseAddress!)
        }
        return dst
    }

    @Test func halvingIsTheMeanOfEach2x2Block() {
        let src = (0..<64).map { UInt8(($0 * 29) % 256) }
        let out = resize(src, h: 8, w: 8, to: ImageShape(height: 4, width: 4, channels: 1))
        for y in 0..<4 {
            for x in 0..<4 {
                let s = [src[(2 * y) * 8 + 2 * x], src[(2 * y) * 8 + 2 * x + 1], src[(2 * y + 1) * 8 + 2 * x], src[(2 * y + 1) * 8 + 2 * x + 1]]
                    .map(Double.init).reduce(0, +) / 4
                #expect(Double(out[y * 4 + x]) == s.rounded(.toNearestOrEven) || abs(Double(out[y * 4 + x]) - s) <= 0.5)
            }
        }
    }

    @Test func areaWeightsFractionalCoverage() {
        // 1×5 → 1×2: each output covers 2.5 input pixels.
        let out = resize([10, 20, 30, 40, 50], h: 1, w: 5, to: ImageShape(height: 1, width: 2, channels: 1))
        #expect(out == [UInt8((10 + 20 + 15) / 2.5), UInt8(((15 + 40 + 50) / 2.5).rounded())])
    }

    @Test func bilinearUpscaleUsesHalfPixelCentres() {
        // As OpenCV INTER_LINEAR / PyTorch align_corners=False: [0, 100] → [0, 25, 75, 100].
        #expect(resize([0, 100], h: 1, w: 2, to: ImageShape(height: 1, width: 4, channels: 1)) == [0, 25, 75, 100])
        // Along both axes, and per channel.
        let rgb: [UInt8] = [0, 0, 200, 100, 40, 200]
        let up = resize(rgb, h: 1, w: 2, to: ImageShape(height: 2, width: 4, channels: 3))
        #expect(Array(up[0..<12]) == [0, 0, 200, 25, 10, 200, 75, 30, 200, 100, 40, 200])
        #expect(Array(up[12..<24]) == Array(up[0..<12]))
    }

    @Test func sameSizeIsACopy() {
        let src = (0..<12).map { UInt8($0 * 20) }
        #expect(resize(src, h: 3, w: 4, to: ImageShape(height: 3, width: 4, channels: 1)) == src)
    }

    @Test func colourToGreyUsesBT601LumaAsPillow() {
        // Pillow: (19595·R + 38470·G + 7471·B + 32768) >> 16. (255, 0, 0) → 76.
        let img = RawImage(height: 1, width: 3, channels: 3, pixels: [255, 0, 0, 10, 20, 30, 255, 255, 255])
        #expect(ChannelConversion.convert(img, to: 1).pixels == [76, 18, 255])
        let grey = RawImage(height: 1, width: 2, channels: 1, pixels: [7, 9])
        #expect(ChannelConversion.convert(grey, to: 3).pixels == [7, 7, 7, 9, 9, 9])
    }
}
