import Foundation
import Testing
import MoLAData

/// JPEG and PNG decoding against Pillow on real photographs nobody here wrote (the ones
/// scikit-learn ships, and matplotlib's when present) and on variants Pillow writes from
/// them: progressive, restart markers, greyscale, CMYK, every EXIF orientation; RGBA,
/// grey+alpha and palette PNGs. Pillow's `exif_transpose(open(f)).convert("RGB"/"L")` is
/// the oracle: our pixels must equal it exactly at native size.
@Suite struct PillowOracleTests {
    /// Writes the files and Pillow's decodings (`f.rgb`, `f.l` raw bytes; `f.json` sizes).
    static let script = #"""
import io, json, os, shutil, sys
from PIL import Image, ImageOps
import sklearn.datasets
out = sys.argv[1]
photos = [os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", n) for n in ("china.jpg", "flower.jpg")]
try:
    import matplotlib
    g = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
    if os.path.exists(g): photos.append(g)
except ImportError:
    pass
files = []
def keep(name):
    files.append(name)
for p in photos:
    base = os.path.splitext(os.path.basename(p))[0]
    shutil.copy(p, os.path.join(out, base + ".jpg")); keep(base + ".jpg")
    im = Image.open(p).convert("RGB")
    im.save(os.path.join(out, base + "-progressive.JPG"), quality=88, progressive=True); keep(base + "-progressive.JPG")
    im.save(os.path.join(out, base + "-restart.jpeg"), quality=80, restart_marker_rows=1); keep(base + "-restart.jpeg")
    im.save(os.path.join(out, base + "-444.jpg"), quality=95, subsampling=0); keep(base + "-444.jpg")
    im.convert("L").save(os.path.join(out, base + "-grey.jpg"), quality=90); keep(base + "-grey.jpg")
    im.convert("CMYK").save(os.path.join(out, base + "-cmyk.jpg"), quality=90); keep(base + "-cmyk.jpg")
    small = im.resize((61, 37))
    for o in range(2, 9):
        exif = Image.Exif(); exif[0x0112] = o
        small.save(os.path.join(out, f"{base}-orient{o}.jpg"), quality=90, exif=exif); keep(f"{base}-orient{o}.jpg")
    im.save(os.path.join(out, base + ".png")); keep(base + ".png")
    rgba = im.copy(); rgba.putalpha(Image.linear_gradient("L").resize(im.size))
    rgba.save(os.path.join(out, base + "-rgba.png")); keep(base + "-rgba.png")
    la = im.convert("LA"); la.save(os.path.join(out, base + "-la.png")); keep(base + "-la.png")
    im.quantize(64).save(os.path.join(out, base + "-palette.png")); keep(base + "-palette.png")
for f in files:
    im = ImageOps.exif_transpose(Image.open(os.path.join(out, f)))
    for mode, ext in (("RGB", ".rgb"), ("L", ".l")):
        with open(os.path.join(out, f + ext), "wb") as h:
            h.write(im.convert(mode).tobytes())
    json.dump({"height": im.height, "width": im.width}, open(os.path.join(out, f + ".json"), "w"))
print("\n".join(files))
"""#

    func fixtures() throws -> (TempDir, [String]) {
        let dir = TempDir("pillow")
        let r = try run("python3", ["-c", Self.script, dir.path])
        try #require(r.status == 0, "the Pillow oracle failed (run scripts/setup.sh for pillow and scikit-learn): \(r.stderr)")
        return (dir, r.stdout.split(separator: "\n").map(String.init))
    }

    func decode(_ path: String, channels: Int) throws -> RawImage {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try data.withUnsafeBytes { raw in
            raw.starts(with: [0xFF, 0xD8]) ? try JPEGCodec.decode(raw, channels: channels) : try PNGCodec.decode(raw, channels: channels)
        }
    }

    @Test func everyVariantEqualsPillowPixelForPixel() throws {
        let (dir, files) = try fixtures()
        #expect(files.count >= 2 * 16)
        for f in files {
            let size = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file(f + ".json")))) as! [String: Int]
            for (channels, ext) in [(3, ".rgb"), (1, ".l")] {
                let ours = try decode(dir.file(f), channels: channels)
                let theirs = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file(f + ext))))
                #expect(ours.height == size["height"] && ours.width == size["width"], "\(f): size")
                let differing = zip(ours.pixels, theirs).filter { $0 != $1 }.count
                let worst = zip(ours.pixels, theirs).map { abs(Int($0) - Int($1)) }.max() ?? 0
                #expect(ours.pixels.count == theirs.count && differing == 0,
                        "\(f) as \(ext): \(differing) values differ from Pillow's (worst by \(worst))")
            }
        }
    }

    /// The whole ingest path on a VLCS-like tree mixing JPEG and PNG (any extension case):
    /// each shard image equals Pillow's grey decoding brought to 48×48 by the same resize.
    @Test func jpegTreeIngestsToPillowsGrey() throws {
        let (dir, files) = try fixtures()
        let tree = TempDir("jpeg-tree")
        let chosen = files.filter { !$0.contains("orient") }
        for (i, f) in chosen.enumerated() {
            let folder = i % 2 == 0 ? "bird" : "car"
            try FileManager.default.createDirectory(atPath: tree.file(folder), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dir.file(f), toPath: tree.file("\(folder)/\(String(format: "%02d", i))-\(f)"))
        }
        let manifest = tree.write("vlcs-like.yaml", """
            name: vlcs-like
            kind: domains
            image: {height: 48, width: 48, channels: 1}
            validation: 0
            tasks:
              - name: domain0
                sources: [{format: jpeg-tree, root: \(tree.path), split: train}]
            """)
        let out = tree.file("dataset")
        let result = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: out, progress: false)).run()
        #expect(result.images == chosen.count)
        let images = try DatasetReader(directory: out).load(.train).images
        // Files are ingested in sorted path order: bird/00…, bird/02…, then car/01…, car/03….
        let order = chosen.indices.sorted { (($0 % 2), $0) < (($1 % 2), $1) }
        for (k, i) in order.enumerated() {
            let size = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file(chosen[i] + ".json")))) as! [String: Int]
            let pillow = RawImage(height: size["height"]!, width: size["width"]!, channels: 1,
                                  pixels: [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file(chosen[i] + ".l")))))
            var want = [UInt8](repeating: 0, count: 48 * 48)
            want.withUnsafeMutableBufferPointer {
                Resampler(inHeight: pillow.height, inWidth: pillow.width, to: ImageShape(height: 48, width: 48, channels: 1), filter: .auto)
                    .apply(pillow, into: $0.baseAddress!)
            }
            let ours = Array(images[(k * 48 * 48)..<((k + 1) * 48 * 48)])
            let worst = zip(ours, want).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(worst <= 1, "\(chosen[i]): differs from Pillow's grey by up to \(worst) levels at 48×48")
        }
    }

    @Test func damagedJPEGsAreNamedErrors() throws {
        let (dir, files) = try fixtures()
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file(files[0]))))
        for (name, bytes) in [("truncated", Array(good.prefix(good.count / 2))), ("header only", Array(good.prefix(200))),
                              ("start only", [0xFF, 0xD8])] {
            #expect(throws: PNGFailure.self, "\(name)") { try bytes.withUnsafeBytes { try JPEGCodec.decode($0, channels: 3) } }
        }
    }
}
