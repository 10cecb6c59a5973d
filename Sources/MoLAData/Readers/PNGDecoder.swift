import CPNG
import Foundation
import MoLASupport

/// PNG decoding and encoding through libpng's simplified API.
///
/// The simplified API reports failure by return value (libpng's default error handling
/// longjmps, which Swift cannot survive) and expands every colour type and bit depth
/// (grey, grey+alpha, RGB, RGBA, palette, 1-16 bits, interlaced). We read 8-bit files in
/// their own colour type, alpha kept, and convert channels ourselves as Pillow does
/// (`ChannelConversion`): libpng's own RGB → grey works in linear light with other weights
/// and composites alpha onto black, which differs from Pillow's `convert("L")` by up to 27
/// levels on photographs.
public enum PNGCodec {
    /// The largest image we agree to decode (a guard against a header claiming gigapixels).
    static let maxPixels = 1 << 28
    // png.h's format macros are compound expressions Swift does not import.
    static let formatGray: UInt32 = 0, formatRGB: UInt32 = 2, formatLinear: UInt32 = 4  // PNG_FORMAT_GRAY, _RGB, _FLAG_LINEAR
    static let flagAlpha: UInt32 = 1, flagColor: UInt32 = 2  // PNG_FORMAT_FLAG_ALPHA, _COLOR

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
        guard rawBytes(bytes, width: w, height: h).map({ Limits.inflatable($0, from: bytes.count) }) ?? true else {
            throw PNGFailure(message: "the header declares \(w)×\(h) pixels, more than a \(bytes.count)-byte PNG can hold")
        }
        if image.format & formatLinear == 0 {
            // 8-bit file: its own colour type (palette expanded), alpha kept; then Pillow's
            // channel conversion.
            let own = image.format & (flagAlpha | flagColor)
            let ownChannels = (own & flagColor != 0 ? 3 : 1) + (own & flagAlpha != 0 ? 1 : 0)
            image.format = own
            var raw = [UInt8](repeating: 0, count: w * h * ownChannels)
            let ok = raw.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(w * ownChannels), nil) }
            guard ok != 0 else { throw PNGFailure(message: libpngMessage(image)) }
            return ChannelConversion.convert(RawImage(height: h, width: w, channels: ownChannels, pixels: raw), to: channels)
        }
        // 16-bit file (medical grey, mostly): read 16-bit linear samples in the requested
        // channels and scale to 8 bits ourselves (libpng 1.6.39 mis-deinterlaces 16-bit
        // files when it converts to 8 bits).
        image.format = (channels == 1 ? formatGray : formatRGB) | formatLinear
        var wide = [UInt16](repeating: 0, count: w * h * channels)
        let ok = wide.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(w * channels), nil) }
        guard ok != 0 else { throw PNGFailure(message: libpngMessage(image)) }
        return RawImage(height: h, width: w, channels: channels, pixels: wide.map { UInt8((UInt32($0) * 255 + 32767) / 65535) })
    }

    /// The filtered scanline bytes the IHDR chunk (always first, at byte 16) declares: what
    /// the compressed data must inflate to. Nil when the chunk is not where it should be
    /// (libpng then reports the damage itself).
    static func rawBytes(_ bytes: UnsafeRawBufferPointer, width w: Int, height h: Int) -> Int? {
        guard bytes.count >= 29, bytes[12] == 0x49, bytes[13] == 0x48, bytes[14] == 0x44, bytes[15] == 0x52 else { return nil }
        let depth = Int(bytes[24]), samples = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(bytes[25])] ?? 4
        return h * (1 + (w * samples * depth + 7) / 8)
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

public struct PNGFailure: MoLAError {
    public var message: String
    public var description: String { message }
}
