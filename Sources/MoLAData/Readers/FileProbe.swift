import Foundation
import MoLASupport
import Yams

/// Reads one file all the way with the reader ingest (or training) uses for its format, and
/// says what it holds — or the error ingest would give. `mola-prep probe`, the damaged-file
/// tests and the fuzz harness all go through here, so what they check is what ingest runs.
public enum FileProbe {
    public enum Format: String, CaseIterable, Sendable {
        case png, jpeg, dicom, nifti, npy, npz, zip, gzip, idx, csv, safetensors
        case indexJSON = "index-json"
        case yaml

        /// The format a file's name suggests (nil: say it with `--format`).
        public static func guess(_ path: String) -> Format? {
            let name = (path as NSString).lastPathComponent.lowercased()
            if name == DatasetIndex.fileName { return .indexJSON }
            if name.hasSuffix(".nii") || name.hasSuffix(".nii.gz") { return .nifti }
            if name.contains("idx") && (name.hasSuffix("ubyte") || name.hasSuffix("ubyte.gz")) { return .idx }
            if name.hasSuffix(".csv") || name.hasSuffix(".csv.gz") { return .csv }
            switch (name as NSString).pathExtension {
            case "png": return .png
            case "jpg", "jpeg": return .jpeg
            case "dcm", "dicom": return .dicom
            case "npy": return .npy
            case "npz": return .npz
            case "zip": return .zip
            case "gz": return .gzip
            case "safetensors": return .safetensors
            case "yaml", "yml": return .yaml
            default: return nil
            }
        }
    }

    /// Reads `path` as `format`; returns a one-line summary of what it holds.
    public static func read(_ path: String, as format: Format) throws -> String {
        switch format {
        case .png, .jpeg:
            let data = try FileIO.read(path)
            let img = try data.withUnsafeBytes { raw in
                do { return format == .png ? try PNGCodec.decode(raw, channels: 3) : try JPEGCodec.decode(raw, channels: 3) } catch {
                    throw DataError(file: path, "not a readable \(format == .png ? "PNG" : "JPEG") (\(error))", fix: "re-export or re-download the image")
                }
            }
            return "\(format.rawValue) \(img.width)×\(img.height)"
        case .dicom:
            let d = try DICOMTreeSource.read(path)
            for f in 0..<d.frames { _ = d.samplesPerPixel == 3 ? d.rgb(frame: f).count : d.modalityValues(frame: f).count }
            return "dicom \(d.frames) frame(s) of \(d.rows)×\(d.columns), \(d.bitsAllocated)-bit, \(d.samplesPerPixel) sample(s)"
        case .nifti:
            let v = try NIfTITreeSource.read(path)
            for t in 0..<v.dims[3] { for k in 0..<v.dims[2] { _ = v.slice(axis: 2, index: k, t: t) } }
            return "nifti \(v.dims.map(String.init).joined(separator: "×"))"
        case .npy:
            let data = try FileIO.read(path)
            let h = try data.withUnsafeBytes { raw in
                do { return try NPYHeader.parse(raw) } catch { throw DataError(file: path, "not a readable .npy array (\(error))") }
            }
            guard h.headerLength + h.dataBytes == data.count else {
                throw DataError(file: path, "the header declares \(h.dataBytes) bytes of \(h.shape) data, the file holds \(data.count - h.headerLength)",
                                fix: "the file is truncated or damaged; save it again")
            }
            return "npy \(h.descr) \(h.shape)"
        case .npz, .zip:
            let archive = try ZipArchive(path: path)
            for m in archive.members { try readMember(archive, m, npy: format == .npz) }
            return "\(format.rawValue) \(archive.members.count) member(s): \(archive.members.map(\.name).joined(separator: ", "))"
        case .gzip:
            return "gzip \(try FileIO.readMaybeGzip(path).count) bytes inflated"
        case .idx:
            let a = try IDXArray(path: path)
            return "idx \(a.dims.map(String.init).joined(separator: "×"))"
        case .csv:
            let firstLine = try FileIO.readMaybeGzip(path).prefix { $0 != 0x0A }
            let columns = firstLine.split(separator: 0x2C, omittingEmptySubsequences: false).count
            let csv = try CSVPixelTable(path: path, pixelsPerRow: max(1, columns - 1), labelColumn: .last, pixelMax: 255, header: nil)
            if let (row, problem) = csv.problems.min(by: { $0.key < $1.key }) {
                throw DataError(file: path, location: "line \(row)", problem,
                                fix: "the file is truncated or a row is damaged; fetch it again (ingest --skip-bad skips such rows)")
            }
            return "csv \(csv.labels.count) row(s) of \(columns - 1) pixels"
        case .safetensors:
            let tensors = try SafeTensors.decode([UInt8](try FileIO.read(path)), file: path).tensors
            return "safetensors \(tensors.count) tensor(s)"
        case .indexJSON:
            // The dataset as training reads it: every split's shards, sized from the index.
            let reader = try DatasetReader(directory: (path as NSString).deletingLastPathComponent)
            let images = try Split.allCases.map { try reader.load($0).count }.reduce(0, +)
            return "index.json \(reader.index.shards.count) shard(s), \(reader.index.tasks.count) task(s), \(images) images"
        case .yaml:
            let value = try ConfigValue.load(file: path)
            return "yaml \(nodes(value.node)) node(s)"
        }
    }

    /// Streams a member through in 1 MiB pieces (its CRC checked at the end); an `.npy`
    /// member's header must declare exactly the bytes the member holds.
    static func readMember(_ archive: ZipArchive, _ m: ZipArchive.Member, npy: Bool) throws {
        let stream = archive.stream(m)
        var buffer = [UInt8](repeating: 0, count: min(m.size, 1 << 20))
        var first = true
        while stream.produced < m.size {
            let n = min(buffer.count, m.size - stream.produced)
            try buffer.withUnsafeMutableBytes { try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
            if first && npy && m.name.hasSuffix(".npy") {
                let h = try buffer[0..<n].withUnsafeBytes { raw in
                    do { return try NPYHeader.parse(raw) } catch {
                        throw DataError(file: archive.path, location: "member \(m.name)", "not a readable .npy array (\(error))")
                    }
                }
                guard h.headerLength + h.dataBytes == m.size else {
                    throw DataError(file: archive.path, location: "member \(m.name)",
                                    "the header declares \(h.dataBytes) bytes of \(h.shape) data, the member holds \(m.size - h.headerLength)",
                                    fix: "the archive is damaged; save it again")
                }
            }
            first = false
        }
    }

    /// Nodes in a YAML document (aliases counted where they stand, not expanded).
    static func nodes(_ node: Yams.Node) -> Int {
        switch node {
        case .mapping(let m): return 1 + m.reduce(0) { $0 + nodes($1.key) + nodes($1.value) }
        case .sequence(let s): return 1 + s.reduce(0) { $0 + nodes($1) }
        default: return 1
        }
    }
}
