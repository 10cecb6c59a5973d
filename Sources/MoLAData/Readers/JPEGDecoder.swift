import CTurboJPEG
import Foundation

/// JPEG decoding through libjpeg-turbo's TurboJPEG API (which reports errors by return
/// value: libjpeg's default error handling longjmps, which Swift cannot survive).
///
/// Decoded as Pillow decodes: the accurate integer DCT (ISLOW) and fancy upsampling (the
/// libjpeg defaults Pillow keeps), so pixels equal Pillow's at native size; CMYK and YCCK
/// files become RGB by Pillow's formula (Adobe files store inverted CMYK); the EXIF
/// orientation is applied (as `ImageOps.exif_transpose`); then channels are converted
/// as `ChannelConversion` (Pillow's `convert`) does.
public enum JPEGCodec {
    static let maxPixels = PNGCodec.maxPixels

    public static func decode(_ bytes: UnsafeRawBufferPointer, channels: Int) throws -> RawImage {
        precondition(channels == 1 || channels == 3)
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            throw PNGFailure(message: "empty file")
        }
        guard let handle = tjInitDecompress() else { throw PNGFailure(message: "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var (w, h, subsampling, colourspace): (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        let size = UInt(bytes.count)
        guard tjDecompressHeader3(handle, base, size, &w, &h, &subsampling, &colourspace) == 0 else {
            throw PNGFailure(message: message(handle))
        }
        guard w > 0, h > 0, Int(w) * Int(h) <= maxPixels else { throw PNGFailure(message: "implausible size \(w)×\(h)") }
        // Each 8×8 block costs at least a bit (its DC code), so a file of n bytes holds at
        // most 512·n pixels; twice that leaves room for arithmetic coding's thinner codes.
        guard Int(w) * Int(h) <= 1024 * bytes.count + (1 << 20) else {
            throw PNGFailure(message: "the header declares \(w)×\(h) pixels, more than a \(bytes.count)-byte JPEG can hold")
        }
        let markers = Markers(bytes)
        let cmyk = colourspace == Int32(TJCS_CMYK.rawValue) || colourspace == Int32(TJCS_YCCK.rawValue)
        let own = colourspace == Int32(TJCS_GRAY.rawValue) ? 1 : cmyk ? 4 : 3
        let format = own == 1 ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB
        var pixels = [UInt8](repeating: 0, count: Int(w) * Int(h) * own)
        let status = pixels.withUnsafeMutableBufferPointer { out in
            tjDecompress2(handle, base, size, out.baseAddress, w, 0, h, Int32(format.rawValue), TJFLAG_ACCURATEDCT)
        }
        // A warning (a truncated or damaged stream libjpeg could still finish) is a failure
        // here: a half-grey image must not become a training example.
        guard status == 0 else { throw PNGFailure(message: message(handle)) }
        var image = RawImage(height: Int(h), width: Int(w), channels: own, pixels: pixels)
        if cmyk { image = cmykToRGB(image, inverted: markers.adobe) }
        image = oriented(image, markers.orientation)
        return ChannelConversion.convert(image, to: channels)
    }

    static func message(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "libjpeg-turbo failed" }
        let s = String(cString: text)
        return s.isEmpty ? "libjpeg-turbo failed" : s
    }

    /// CMYK → RGB as Pillow's `convert("RGB")`: with n = 255 − K, each channel is
    /// n − round(X·n / 255) (Pillow's rounding of X·n/255), clipped. Adobe files store the
    /// inks inverted; Pillow reads them as "CMYK;I", so they are inverted back first.
    static func cmykToRGB(_ img: RawImage, inverted: Bool) -> RawImage {
        let n = img.height * img.width
        var out = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            var ink = (0..<4).map { Int(img.pixels[i * 4 + $0]) }
            if inverted { ink = ink.map { 255 - $0 } }
            let nk = 255 - ink[3]
            for c in 0..<3 {
                let t = ink[c] * nk + 128
                out[i * 3 + c] = UInt8(max(0, min(255, nk - (((t >> 8) + t) >> 8))))
            }
        }
        return RawImage(height: img.height, width: img.width, channels: 3, pixels: out)
    }

    /// The image turned upright by EXIF orientation 2…8 (1 or none: unchanged), as
    /// `ImageOps.exif_transpose`.
    static func oriented(_ img: RawImage, _ orientation: Int) -> RawImage {
        guard (2...8).contains(orientation) else { return img }
        let (h, w, c) = (img.height, img.width, img.channels)
        let swaps = orientation >= 5
        let (oh, ow) = swaps ? (w, h) : (h, w)
        var out = [UInt8](repeating: 0, count: img.pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sy, sx): (Int, Int)
                switch orientation {
                case 2: (sy, sx) = (y, w - 1 - x)
                case 3: (sy, sx) = (h - 1 - y, w - 1 - x)
                case 4: (sy, sx) = (h - 1 - y, x)
                case 5: (sy, sx) = (x, y)
                case 6: (sy, sx) = (h - 1 - x, y)
                case 7: (sy, sx) = (h - 1 - x, w - 1 - y)
                default: (sy, sx) = (x, w - 1 - y)
                }
                for k in 0..<c { out[(y * ow + x) * c + k] = img.pixels[(sy * w + sx) * c + k] }
            }
        }
        return RawImage(height: oh, width: ow, channels: c, pixels: out)
    }

    /// What the segments before the image data say: the EXIF orientation (APP1) and
    /// whether an Adobe APP14 segment is present (its CMYK is stored inverted).
    struct Markers {
        var orientation = 1
        var adobe = false

        init(_ b: UnsafeRawBufferPointer) {
            var p = 2
            while p + 4 <= b.count, b[p] == 0xFF {
                let marker = b[p + 1]
                if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { p += 2; continue }
                if marker == 0xDA || marker == 0xD9 { break }  // image data: no more headers
                let length = Int(b[p + 2]) << 8 | Int(b[p + 3])
                guard length >= 2, p + 2 + length <= b.count else { break }
                let body = UnsafeRawBufferPointer(rebasing: b[(p + 4)..<(p + 2 + length)])
                if marker == 0xEE, body.starts(with: Array("Adobe".utf8)) { adobe = true }
                if marker == 0xE1, body.starts(with: Array("Exif\0\0".utf8)) { orientation = Self.exifOrientation(UnsafeRawBufferPointer(rebasing: body[6...])) ?? orientation }
                p += 2 + length
            }
        }

        /// Tag 0x0112 of IFD0 in a TIFF structure (either byte order); nil if absent or damaged.
        static func exifOrientation(_ t: UnsafeRawBufferPointer) -> Int? {
            guard t.count >= 8 else { return nil }
            let little = t[0] == 0x49 && t[1] == 0x49
            guard little || (t[0] == 0x4D && t[1] == 0x4D) else { return nil }
            func u16(_ o: Int) -> Int? { o + 2 <= t.count ? (little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])) : nil }
            func u32(_ o: Int) -> Int? { guard let a = u16(o), let b = u16(o + 2) else { return nil }; return little ? a | b << 16 : a << 16 | b }
            guard let ifd = u32(4), let count = u16(ifd) else { return nil }
            for e in 0..<count {
                let entry = ifd + 2 + e * 12
                guard let tag = u16(entry) else { return nil }
                if tag == 0x0112 { return u16(entry + 8) }
            }
            return nil
        }
    }
}
