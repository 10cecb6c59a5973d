import CPNG
import Foundation

/// PNG decoding and encoding through libpng's simplified API.
///
/// The simplified API reports failure by return value (libpng's default error handling
/// longjmps, which Swift cannot survive), converts every colour type and bit depth
/// (grey, grey+alpha, RGB, RGBA, palette, 1-16 bits, interlaced) to the requested channels,
/// and composites transparent pixels onto black.
public enum PNGCodec {
    /// The largest image we agree to decode (a guard against a header claiming gigapixels).
    static let maxPixels = 1 << 28
    // png.h's format macros are compound expressions Swift does not import.
    static let formatGray: UInt32 = 0, formatRGB: UInt32 = 2, formatLinear: UInt32 = 4  // PNG_FORMAT_GRAY, _RGB, _FLAG_LINEAR

    /// Decodes PNG bytes to 8-bit grey (`channels` 1) or RGB (3). 16-bit samples are scaled
    /// linearly (v·255/65535, rounded), as medical images expect, not gamma-converted.
    public static func decode(_ bytes: UnsafeRawBufferPointer, channels: Int) throws -> RawImage {
        precondition(channels == 1 || channels == 3)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw PNGFailure(message: "empty file") }
        guard png_image_begin_read_from_memory(&image, base, bytes.count) != 0 else {
            throw PNGFailure(message: libpngMessage(image))
        }
        let (w, h) = (Int(image.width), Int(image.height))
        guard w > 0, h > 0, w * h <= maxPixels else { throw PNGFailure(message: "implausible size \(w)×\(h)") }
        let colour = channels == 1 ? formatGray : formatRGB
        var pixels = [UInt8](repeating: 0, count: w * h * channels)  // black: the compositing background
        if image.format & formatLinear != 0 {
            // 16-bit file: read 16-bit linear samples and scale to 8 bits ourselves
            // (libpng 1.6.39 mis-deinterlaces 16-bit files when it converts to 8 bits).
            image.format = colour | formatLinear
            var wide = [UInt16](repeating: 0, count: w * h * channels)
            let ok = wide.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(w * channels), nil) }
            guard ok != 0 else { throw PNGFailure(message: libpngMessage(image)) }
            for i in 0..<wide.count { pixels[i] = UInt8((UInt32(wide[i]) * 255 + 32767) / 65535) }
        } else {
            image.format = colour
            let ok = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(w * channels), nil) }
            guard ok != 0 else { throw PNGFailure(message: libpngMessage(image)) }
        }
        return RawImage(height: h, width: w, channels: channels, pixels: pixels)
    }

    /// Writes an 8-bit grey or RGB image to `path` (written to a temporary name, then renamed).
    public static func write(_ img: RawImage, to path: String) throws {
        precondition(img.channels == 1 || img.channels == 3)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = img.channels == 1 ? formatGray : formatRGB
        let tmp = path + ".tmp-\(getpid())"
        let ok = img.pixels.withUnsafeBytes { buf in
            png_image_write_to_file(&image, tmp, 0, buf.baseAddress, Int32(img.width * img.channels), nil)
        }
        defer { png_image_free(&image) }
        guard ok != 0 else {
            unlink(tmp)
            throw DataError(file: path, "cannot write PNG: \(libpngMessage(image))",
                            fix: "check that the directory exists and is writable")
        }
        try FileIO.rename(tmp, path)
    }

    static func libpngMessage(_ image: png_image) -> String {
        var m = image.message
        let text = withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "libpng failed" : text
    }
}

public struct PNGFailure: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
