import Foundation
import Testing
import MoLAData

/// NIfTI slices against nibabel on the volumes nibabel ships (`nibabel/tests/data`):
/// NIfTI-1 `anatomical.nii`, 4-D `example4d.nii.gz`, NIfTI-2 `example_nifti2.nii.gz`, and a
/// big-endian copy nibabel writes. Oracle: `get_fdata()` sliced as numpy does, windowed by
/// the volume's cal_min…cal_max or min…max with the DICOM LINEAR formula.
@Suite struct NIfTITests {
    static let script = #"""
import json, os, sys, shutil
import numpy as np, nibabel as nib
src = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
out, axis = sys.argv[1], int(sys.argv[2])
names = ["anatomical.nii", "example4d.nii.gz", "example_nifti2.nii.gz"]
for n in names: shutil.copy(os.path.join(src, n), os.path.join(out, n))
img = nib.load(os.path.join(src, "anatomical.nii"))
be = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header.as_byteswapped(">"))
be.set_data_dtype(img.get_data_dtype().newbyteorder(">"))
nib.save(be, os.path.join(out, "anatomical-bigendian.nii")); names.append("anatomical-bigendian.nii")
meta = []
for n in names:
    im = nib.load(os.path.join(out, n))
    data = im.get_fdata()
    if data.ndim == 3: data = data[..., None]
    data = data.reshape(data.shape[:3] + (-1,))
    h = im.header
    lo, hi = float(h["cal_min"]), float(h["cal_max"])
    count = 0
    with open(os.path.join(out, n + ".u8"), "wb") as f:
        for t in range(data.shape[3]):
            vol = data[..., t]
            if not hi > lo: lo_t, hi_t = vol.min(), vol.max()
            else: lo_t, hi_t = lo, hi
            c, w = (lo_t + hi_t + 1) / 2, max(1.0, hi_t - lo_t + 1)
            for k in range(vol.shape[axis]):
                s = np.take(vol, k, axis=axis)
                if np.all(s == s.flat[0]): continue
                y = ((s - (c - 0.5)) / (w - 1) + 0.5) * 255
                y = np.where(s <= c - 0.5 - (w - 1) / 2, 0, np.where(s > c - 0.5 + (w - 1) / 2, 255, np.clip(np.floor(y + 0.5), 0, 255)))
                f.write(y.astype(np.uint8).tobytes()); count += 1
                shape = y.shape
    meta.append([n, count, shape[0], shape[1]])
print(json.dumps(meta))
"""#

    @Test(arguments: [("z", 2), ("x", 0)])
    func slicesEqualNibabel(axisName: String, axis: Int) throws {
        let dir = TempDir("nifti")
        let r = try run("python3", ["-c", Self.script, dir.path, "\(axis)"])
        try #require(r.status == 0, "the nibabel oracle failed (pip install nibabel): \(r.stderr)")
        let meta = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[Any]]
        for entry in meta {
            let (name, count, rows, cols) = (entry[0] as! String, entry[1] as! Int, entry[2] as! Int, entry[3] as! Int)
            let tree = TempDir("nifti-tree")
            try FileManager.default.createDirectory(atPath: tree.file("brain"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dir.file(name), toPath: tree.file("brain/\(name)"))
            let manifest = tree.write("m.yaml", """
                image: {height: \(rows), width: \(cols), channels: 1}
                validation: 0
                tasks:
                  - {name: t, sources: [{format: nifti, root: \(tree.path), split: train, slices: {axis: \(axisName), skip_empty: true}}]}
                """)
            let result = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: tree.file("out"), progress: false)).run()
            #expect(result.images == count, "\(name): slices")
            let ours = try DatasetReader(directory: tree.file("out")).load(.train).images
            let want = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file(name + ".u8"))))
            let off = zip(ours, want).filter { $0 != $1 }
            let worst = off.map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(ours.count == want.count && worst <= 1 && off.count * 1000 <= want.count,
                    "\(name) across \(axisName): \(off.count) of \(want.count) values differ from nibabel's, by up to \(worst)")
        }
    }

    @Test func aHeaderThatDisagreesWithItsDataIsANamedError() throws {
        let dir = TempDir("nifti-bad")
        let r = try run("python3", ["-c", "import nibabel, os, shutil, sys; shutil.copy(os.path.join(os.path.dirname(nibabel.__file__), 'tests', 'data', 'anatomical.nii'), sys.argv[1])",
                                    dir.file("anatomical.nii")])
        try #require(r.status == 0, "pip install nibabel")
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("anatomical.nii"))))
        _ = dir.write("tree/brain/cut.nii", Array(whole.prefix(whole.count - 1000)))
        let manifest = dir.write("m.yaml", """
            image: {height: 32, width: 32, channels: 1}
            tasks:
              - {name: t, sources: [{format: nifti, root: \(dir.file("tree")), split: train}]}
            """)
        #expect {
            try Ingest(manifest: try Manifest(path: manifest), options: .init(output: dir.file("out"), progress: false)).run()
        } throws: { "\($0)".contains("cut.nii") && "\($0)".contains("the header says") }
        #expect(!FileManager.default.fileExists(atPath: dir.file("out")))
    }

    /// With --skip-bad, damaged files of every new format are counted in index.json's
    /// `skipped` and the rest ingests: a truncated JPEG, a DICOM without pixel data, a
    /// NIfTI cut short.
    @Test func skipBadCountsDamagedFilesOfEveryFormat() throws {
        let dir = TempDir("skip-bad")
        let script = """
            import os, shutil, sys, pydicom, nibabel, sklearn.datasets
            out = sys.argv[1]
            def put(src, dst, cut=0):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                data = open(src, "rb").read()
                open(dst, "wb").write(data[:len(data) - cut] if cut else data)
            jpg = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", "china.jpg")
            put(jpg, os.path.join(out, "jpeg/a/good.jpg")); put(jpg, os.path.join(out, "jpeg/a/cut.jpg"), cut=40000)
            dcm = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
            put(os.path.join(dcm, "CT_small.dcm"), os.path.join(out, "dicom/a/good.dcm"))
            put(os.path.join(dcm, "rtplan.dcm"), os.path.join(out, "dicom/a/plan.dcm"))
            nii = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")
            put(nii, os.path.join(out, "nifti/a/good.nii")); put(nii, os.path.join(out, "nifti/a/cut.nii"), cut=5000)
            """
        let r = try run("python3", ["-c", script, dir.path])
        try #require(r.status == 0, "fixtures need pillow, scikit-learn, pydicom, nibabel: \(r.stderr)")
        for (format, root, good) in [("jpeg-tree", "jpeg", 1), ("dicom-tree", "dicom", 1), ("nifti", "nifti", -1)] {
            let manifest = dir.write("\(root).yaml", """
                image: {height: 32, width: 32, channels: 1}
                validation: 0
                tasks:
                  - {name: t, sources: [{format: \(format), root: \(dir.file(root)), split: train}]}
                """)
            let out = dir.file("out-\(root)")
            let result = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: out, skipBad: true, progress: false)).run()
            #expect(result.index.skipped.count == 1, "\(format): skipped \(result.index.skipped.records)")
            #expect(result.index.skipped.records.first?.contains("cut") == true || result.index.skipped.records.first?.contains("plan") == true)
            if good > 0 { #expect(result.images == good, "\(format)") } else { #expect(result.images > 0, "\(format)") }
        }
    }

    /// `labels: table.csv` instead of class folders, for NIfTI volumes and DICOM files in
    /// one folder (as research data and PACS exports come); a row naming a missing file is
    /// an error naming the table and line.
    @Test func labelsFromATable() throws {
        let dir = TempDir("labels")
        let script = """
            import os, shutil, sys, pydicom, nibabel
            out = sys.argv[1]
            os.makedirs(os.path.join(out, "scans"))
            nii = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
            shutil.copy(os.path.join(nii, "anatomical.nii"), os.path.join(out, "scans", "a.nii"))
            shutil.copy(os.path.join(nii, "example_nifti2.nii.gz"), os.path.join(out, "scans", "b.nii.gz"))
            dcm = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
            shutil.copy(os.path.join(dcm, "CT_small.dcm"), os.path.join(out, "scans", "c.dcm"))
            shutil.copy(os.path.join(dcm, "MR_small.dcm"), os.path.join(out, "scans", "d.dcm"))
            """
        let r = try run("python3", ["-c", script, dir.path])
        try #require(r.status == 0, "pip install pydicom nibabel: \(r.stderr)")
        _ = dir.write("volumes.csv", "file,label\nscans/a.nii,tumour\nscans/b.nii.gz,normal\n")
        _ = dir.write("slices.csv", "scans/d.dcm, normal\nscans/c.dcm, tumour\n")
        let manifest = dir.write("m.yaml", """
            image: {height: 32, width: 32, channels: 1}
            validation: 0
            tasks:
              - name: volumes
                sources: [{format: nifti, root: \(dir.path), labels: volumes.csv, split: train}]
              - name: slices
                classes: [normal, tumour]
                sources: [{format: dicom-tree, root: \(dir.path), labels: slices.csv, split: train}]
            """)
        let result = try Ingest(manifest: try Manifest(path: manifest), options: .init(output: dir.file("out"), progress: false)).run()
        #expect(result.index.tasks[0].classes == ["normal", "tumour"])
        let perClass = result.index.split(.train)!.perClass
        #expect(perClass[0][0] > 0 && perClass[0][1] > 0)  // slices of b (normal) and a (tumour)
        #expect(perClass[1] == [1, 1])
        _ = dir.write("broken.csv", "file,label\nscans/a.nii,tumour\nscans/missing.nii,normal\n")
        let broken = dir.write("broken.yaml", """
            image: {height: 32, width: 32, channels: 1}
            tasks:
              - {name: t, sources: [{format: nifti, root: \(dir.path), labels: broken.csv, split: train}]}
            """)
        #expect {
            try Ingest(manifest: try Manifest(path: broken), options: .init(output: dir.file("out2"), progress: false)).run()
        } throws: { "\($0)".contains("broken.csv: line 3") && "\($0)".contains("missing.nii") }
    }
}
