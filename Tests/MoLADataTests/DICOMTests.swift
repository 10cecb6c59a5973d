import Foundation
import Testing
import MoLAData

/// DICOM decoding against pydicom on the files pydicom ships (`pydicom/data/test_files`):
/// every native transfer syntax it has (implicit VR LE, explicit VR LE and BE, deflated),
/// 8/16/32-bit, signed and unsigned, grey and RGB, multi-frame. Oracle: pydicom's
/// `pixel_array` and `apply_modality_lut`, then the DICOM LINEAR window formula.
@Suite struct DICOMTests {
    static let native = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
                         "MR_small_padded.dcm", "ExplVR_BigEnd.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm",
                         "examples_overlay.dcm", "examples_rgb_color.dcm", "image_dfl.dcm", "rtdose.dcm"]

    /// Writes, per file and frame, the expected 8-bit pixels (`<file>.<frame>.u8`) and a
    /// JSON list of [file, frames, rows, columns, channels].
    static let script = #"""
import json, os, sys, shutil
import numpy as np, pydicom
from pydicom.pixels import apply_modality_lut
src = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
out = sys.argv[1]; names = sys.argv[2].split(",")
meta = []
for n in names:
    shutil.copy(os.path.join(src, n), os.path.join(out, n))
    ds = pydicom.dcmread(os.path.join(src, n))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    arr = ds.pixel_array
    if frames == 1: arr = arr[None]
    rgb = int(ds.SamplesPerPixel) == 3
    for f in range(frames):
        a = arr[f]
        if rgb:
            y = a.astype(np.uint8)
        else:
            x = apply_modality_lut(a, ds).astype(np.float64)
            if "WindowCenter" in ds and "WindowWidth" in ds:
                c = float(np.atleast_1d(ds.WindowCenter)[0]); w = float(np.atleast_1d(ds.WindowWidth)[0])
            else:
                lo, hi = x.min(), x.max(); c, w = (lo + hi + 1) / 2, max(1.0, hi - lo + 1)
            y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
            y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, np.where(x > c - 0.5 + (w - 1) / 2, 255, np.clip(np.floor(y + 0.5), 0, 255)))
            y = y.astype(np.uint8)
            if ds.PhotometricInterpretation == "MONOCHROME1": y = 255 - y
        open(os.path.join(out, f"{n}.{f}.u8"), "wb").write(np.ascontiguousarray(y).tobytes())
    meta.append([n, frames, int(ds.Rows), int(ds.Columns), 3 if rgb else 1])
print(json.dumps(meta))
"""#

    func oracle(_ dir: TempDir) throws -> [[Any]] {
        let r = try run("python3", ["-c", Self.script, dir.path, Self.native.joined(separator: ",")])
        try #require(r.status == 0, "the pydicom oracle failed (pip install pydicom): \(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[Any]]
    }

    /// A dicom-tree over the files (each in its own class folder, some without extension)
    /// ingested at native size must hold pydicom's pixels, frame by frame.
    @Test func nativeFilesEqualPydicom() throws {
        let dir = TempDir("dicom")
        let meta = try oracle(dir)
        var total = 0
        for entry in meta {
            let (name, frames, rows, cols, ch) = (entry[0] as! String, entry[1] as! Int, entry[2] as! Int, entry[3] as! Int, entry[4] as! Int)
            let tree = TempDir("dicom-tree")
            let folder = tree.file("x")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // Scanner exports often have no extension: found by the DICM preamble.
            let target = name.hasPrefix("MR_small_implicit") ? folder + "/IM0001" : folder + "/" + name
            try FileManager.default.copyItem(atPath: dir.file(name), toPath: target)
            let manifest = tree.write("m.yaml", """
                image: {height: \(rows), width: \(cols), channels: \(ch)}
                validation: 0
                tasks:
                  - name: t
                    sources: [{format: dicom-tree, root: \(tree.path), split: train}]
                """)
            let result = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: tree.file("out"), progress: false)).run()
            #expect(result.images == frames, "\(name): frames")
            let images = try DatasetReader(directory: tree.file("out")).load(.train).images
            for f in 0..<frames {
                let want = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("\(name).\(f).u8"))))
                let ours = Array(images[(f * want.count)..<min(images.count, (f + 1) * want.count)])
                let worst = zip(ours, want).map { abs(Int($0) - Int($1)) }.max() ?? 999
                #expect(ours.count == want.count && worst == 0, "\(name) frame \(f): differs from pydicom by up to \(worst)")
            }
            total += frames
        }
        #expect(total >= Self.native.count)
        // `frame: n` keeps one frame of a multi-frame file.
        let tree = TempDir("dicom-frame")
        try FileManager.default.createDirectory(atPath: tree.file("x"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir.file("rtdose.dcm"), toPath: tree.file("x/rtdose.dcm"))
        let rows = meta.first { ($0[0] as! String) == "rtdose.dcm" }!
        let manifest = tree.write("m.yaml", """
            image: {height: \(rows[2] as! Int), width: \(rows[3] as! Int), channels: 1}
            validation: 0
            tasks:
              - {name: t, sources: [{format: dicom-tree, root: \(tree.path), split: train, frame: 2}]}
            """)
        let one = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: tree.file("out"), progress: false)).run()
        #expect(one.images == 1)
        let frame2 = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("rtdose.dcm.2.u8"))))
        #expect(try DatasetReader(directory: tree.file("out")).load(.train).images == frame2)
    }

    @Test func compressedTruncatedAndImagelessFilesAreNamedErrors() throws {
        let src = try run("python3", ["-c", "import pydicom, os; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))"])
        try #require(src.status == 0, "pip install pydicom")
        let base = src.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let cases: [(String, String)] = [("JPEG2000.dcm", "JPEG 2000 (1.2.840.10008.1.2.4.91)"), ("MR_small_RLE.dcm", "RLE Lossless"),
                                         ("JPEG-lossy.dcm", "JPEG Extended"), ("MR_truncated.dcm", "truncated"), ("rtplan.dcm", "no pixel data"),
                                         ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422")]
        for (name, words) in cases {
            let tree = TempDir("dicom-bad")
            try FileManager.default.createDirectory(atPath: tree.file("x"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: base + "/" + name, toPath: tree.file("x/\(name)"))
            let manifest = tree.write("m.yaml", """
                image: {height: 32, width: 32, channels: 1}
                tasks:
                  - name: t
                    sources: [{format: dicom-tree, root: \(tree.path), split: train, window: ct-abdomen}]
                """)
            do {
                _ = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: tree.file("out"), progress: false)).run()
                Issue.record("\(name): ingest succeeded")
            } catch {
                let text = "\(error)"
                #expect(text.contains(name) && text.contains(words), "\(name): \(text)")
                if name.contains("RLE") || name.contains("JPEG") { #expect(text.contains("gdcmconv") || text.contains("dcmdjpeg")) }
            }
            #expect(!FileManager.default.fileExists(atPath: tree.file("out")), "\(name): nothing is written")
        }
    }

    /// A CT series as a scanner writes it (pydicom writes it here): signed 16-bit values,
    /// rescale intercept −1024, two files MONOCHROME1; windows from a preset and explicit.
    @Test(arguments: [("ct-abdomen", 40.0, 400.0), ("{center: -600, width: 1500}", -600.0, 1500.0)])
    func windowsFollowTheStandardsLinearFunction(window: String, center: Double, width: Double) throws {
        let tree = TempDir("dicom-window")
        try Self.writeCTSeries(tree.file("data"), folder: "liver")
        let manifest = tree.write("m.yaml", """
            image: {height: 16, width: 24, channels: 1}
            validation: 0
            tasks:
              - {name: ct, sources: [{format: dicom-tree, root: \(tree.file("data")), split: train, window: \(window)}]}
            """)
        _ = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: tree.file("out"), progress: false)).run()
        let images = try DatasetReader(directory: tree.file("out")).load(.train).images
        for i in 0..<4 {
            let want: [UInt8] = (0..<(16 * 24)).map { p in
                let hu = Double(p * 7 + i * 13 - 200) - 1024
                let y: Double
                if hu <= center - 0.5 - (width - 1) / 2 { y = 0 } else if hu > center - 0.5 + (width - 1) / 2 { y = 255 } else {
                    y = (((hu - (center - 0.5)) / (width - 1) + 0.5) * 255).rounded()
                }
                return i % 2 == 1 ? 255 - UInt8(y) : UInt8(y)
            }
            #expect(Array(images[(i * 384)..<((i + 1) * 384)]) == want, "slice \(i), window \(window)")
        }
        let bad = tree.write("bad.yaml", """
            image: {height: 8, width: 8, channels: 1}
            tasks:
              - {name: t, sources: [{format: dicom-tree, root: \(tree.path), split: train, window: ct-lungs}]}
            """)
        #expect { try Manifest(path: bad) } throws: { "\($0)".contains("ct-lung") }
    }

    /// Four CT slices as a scanner writes them (pydicom writes them): 16×24 signed 16-bit,
    /// rescale intercept −1024, slices 1 and 3 MONOCHROME1; in root/<folder>/.
    static func writeCTSeries(_ root: String, folder: String) throws {
        let script = #"""
import os, sys, numpy as np, pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
root = sys.argv[1]
folder = sys.argv[2]
os.makedirs(os.path.join(root, folder), exist_ok=True)
for i in range(4):
    meta = FileMetaDataset(); meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"; meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "CT"; ds.Rows, ds.Columns = 16, 24; ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if i % 2 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    v = (np.arange(16 * 24, dtype=np.int32).reshape(16, 24) * 7 + i * 13 - 200).astype(np.int16)
    ds.PixelData = v.tobytes()
    ds.save_as(os.path.join(root, folder, f"IM{i:04d}"), enforce_file_format=True)
"""#
        let r = try run("python3", ["-c", script, root, folder])
        try #require(r.status == 0, "pydicom could not write the fixture: \(r.stderr)")
    }

    @Test func theShippedDICOMExampleReadsASeriesTree() throws {
        let tree = TempDir("dicom-example")
        try Self.writeCTSeries(tree.file("data"), folder: "lesion/patient-01/series-2")
        try Self.writeCTSeries(tree.file("data"), folder: "normal/patient-07")
        setenv("DICOM_DIR", tree.file("data"), 1)
        let r = try Ingest(manifest: try Manifest(path: packageRoot + "/data-manifests/dicom-example.yaml"),
                           options: .init(output: tree.file("out"), progress: false)).run()
        #expect(r.images == 8)
        #expect(r.index.tasks[0].classes == ["lesion", "normal"])
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
    }
}
