import Foundation
import MoLASupport

/// NIfTI volumes in class folders (`root/<class>/**/*.nii[.gz]`) as 2-D slices: across
/// `slices.axis`, every `slices.every`-th, of every volume of a 4-D file, skipping slices
/// whose values are all equal (`skip_empty`). Values are scaled by scl_slope/scl_inter,
/// then windowed like DICOM (`window: file` = cal_min…cal_max, or the volume's range).
final class NIfTITreeSource: ImageSource {
    let path: String
    let records: [SourceRecord]
    let slices: [(file: String, t: Int, index: Int)]
    let window: DICOMWindow
    let axis: Int

    static func listing(_ root: String) throws -> [(file: String, folder: String)] {
        try TreeListing.files(root) { rel, _ in
            let lower = rel.lowercased()
            return lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz")
        }
    }

    init(root: String, listing list: [(file: String, folder: String)], classes: [String], kind: LabelKind = .single, split: Manifest.SourceSpec.SplitRule,
         window: DICOMWindow, slices rule: Manifest.SourceSpec.SliceRule) throws {
        path = root
        self.window = window
        axis = rule.axis
        let fixed: Split? = { if case .fixed(let s) = split { return s } else { return nil } }()
        let index = try TreeListing.labels(list, classes: classes, kind: kind, root: root, what: "NIfTI files", layout: "root/<class>/**/*.nii or *.nii.gz")
        // The volumes are read once here to know their slices (and which are empty).
        var slices: [(String, Int, Int)] = [], records: [SourceRecord] = []
        for (file, folder) in list {
            let volume: NIfTIVolume
            do { volume = try Self.read(file) } catch let e as DataError {
                slices.append((file, 0, 0))
                records.append(SourceRecord(label: index[folder]!, split: fixed, location: file, problem: e.message, fix: e.fix))
                continue
            }
            for t in 0..<volume.dims[3] {
                for k in stride(from: 0, to: volume.dims[rule.axis], by: rule.every) {
                    if rule.skipEmpty {
                        let v = volume.slice(axis: rule.axis, index: k, t: t).values
                        if v.allSatisfy({ $0 == v.first }) { continue }
                    }
                    slices.append((file, t, k))
                    records.append(SourceRecord(label: index[folder]!, split: fixed, location: "\(file) t \(t) slice \(k)", problem: nil))
                }
            }
        }
        self.slices = slices
        self.records = records
    }

    static func read(_ file: String) throws -> NIfTIVolume {
        do { return try NIfTIVolume([UInt8](try FileIO.read(file))) } catch let e as NIfTIVolume.Failure {
            throw DataError(file: file, e.description, fix: e.fix)
        } catch let e as ZlibFailure {
            throw DataError(file: file, "damaged gzip stream: \(e)", fix: "the file is truncated; fetch it again")
        }
    }

    func decode(_ range: Range<Int>, channels: Int, threads: Int) throws -> [Result<RawImage, DataError>] {
        TreeListing.decode(range.count, threads: threads, file: { slices[range.lowerBound + $0].file }, read: Self.read) { volume, k in
            let (_, t, index) = slices[range.lowerBound + k]
            let s = volume.slice(axis: axis, index: index, t: t)
            let w = window == .file ? volume.fileWindow(t: t) : window
            return ChannelConversion.convert(RawImage(height: s.rows, width: s.columns, channels: 1, pixels: w.apply(s.values, file: (nil, nil))), to: channels)
        }
    }
}
