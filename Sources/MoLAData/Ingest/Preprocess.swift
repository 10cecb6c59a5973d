import Foundation
import MoLASupport

/// New images prepared exactly as ingest prepared a dataset's: decoded by the reader of
/// their format with the settings the dataset's manifest gives that format (DICOM window,
/// frame, NIfTI slices), resized with the manifest's filter to its size and channels. So a
/// model sees a new scan as it saw its training images. One record per image, DICOM frame
/// or NIfTI slice.
public struct PreparedImages: Sendable {
    /// Each record's file and where in it ("file", "file frame 3", "file slice 12 (t 0)").
    public var files: [String]
    public var locations: [String]
    public var shape: ImageShape
    /// N × H × W × C, as a shard holds them.
    public var pixels: [UInt8]
    /// Records that could not be read (with --skip-bad), as ingest words them.
    public var skipped: [String]
    public var count: Int { files.count }

    /// Prepares `inputs` (image files, or folders searched for them) like `manifest`'s task
    /// `task` (its first task when nil). PNG and JPEG, DICOM (by extension or preamble) and
    /// NIfTI are read; other files in folders are passed over, a named file of another kind
    /// is an error.
    public init(_ inputs: [String], like manifest: Manifest, task: String?, skipBad: Bool, threads: Int = Parallel.cores) throws {
        guard let spec = task.map({ n in manifest.tasks.first { $0.name == n } }) ?? manifest.tasks.first else {
            throw DataError(file: manifest.file, "no task named '\(task ?? "")'", fix: "tasks: \(manifest.tasks.map(\.name).joined(separator: ", "))")
        }
        shape = manifest.shape
        files = []; locations = []; pixels = []; skipped = []
        var byFormat: [Manifest.SourceSpec.Format: [String]] = [:]
        for input in inputs {
            let path = URL(fileURLWithPath: input).standardized.path
            if FileIO.isDirectory(path) {
                guard let e = FileManager.default.enumerator(atPath: path) else { continue }
                var found: [String] = []
                while let rel = e.nextObject() as? String {
                    if rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                    if let f = Self.format(of: path + "/" + rel) { byFormat[f, default: []].append(path + "/" + rel); found.append(rel) }
                }
                if found.isEmpty { throw DataError(file: path, "no PNG, JPEG, DICOM or NIfTI files in this folder", fix: "point at image files or their folder") }
            } else if !FileIO.exists(path) {
                throw DataError(file: path, "file not found", fix: "check the path")
            } else if let f = Self.format(of: path) {
                byFormat[f, default: []].append(path)
            } else {
                throw DataError(file: path, "not a PNG, JPEG, DICOM or NIfTI file", fix: "predict reads the image formats mola-prep ingests from folders")
            }
        }
        for format in Manifest.SourceSpec.Format.allCases {
            guard let list = byFormat[format]?.sorted() else { continue }
            try add(list, format: format, spec: spec, manifest: manifest, skipBad: skipBad, threads: threads)
        }
    }

    /// The tree format that reads `file`, from its name or (DICOM) its preamble.
    static func format(of file: String) -> Manifest.SourceSpec.Format? {
        let lower = file.lowercased()
        if ImageTreeSource.extensions.contains(where: { lower.hasSuffix($0) }) { return .imageTree }
        if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") { return .nifti }
        if lower.hasSuffix(".dcm") || lower.hasSuffix(".dicom") || (!FileIO.isDirectory(file) && DICOMTreeSource.hasPreamble(file)) { return .dicomTree }
        return nil
    }

    /// Opens `list` as the task's source of that format would be (its settings copied; a
    /// format the task never used keeps the defaults) and decodes every record.
    private mutating func add(_ list: [String], format: Manifest.SourceSpec.Format, spec: Manifest.TaskSpec, manifest: Manifest,
                              skipBad: Bool, threads: Int) throws {
        let same = spec.sources.first { $0.format == format || ($0.format.isImageTree && format.isImageTree) }
        var source = same ?? spec.sources[0]
        if same == nil { (source.window, source.frame, source.slices) = (.file, nil, .init()) }
        source.format = format
        source.labels = nil
        source.split = .fixed(.test)
        source.paths = [URL(fileURLWithPath: list[0]).deletingLastPathComponent().path]
        // Every file under one pseudo-class: the labels are not used.
        let opened = try source.open(classes: ["input"], listing: list.map { ($0, "input") })
        let n = shape.pixelCount
        let known = Set(list)
        var resamplers: [Int: Resampler] = [:]
        pixels.reserveCapacity(pixels.count + opened.records.count * n)
        var lo = 0
        while lo < opened.records.count {
            let range = lo..<min(opened.records.count, lo + 256)
            let decoded = try opened.decode(range, channels: shape.channels, threads: threads)
            for (k, i) in range.enumerated() {
                let record = opened.records[i]
                let result: Result<RawImage, DataError> = record.problem.map { .failure(DataError(file: record.location, $0, fix: record.fix)) } ?? decoded[k]
                switch result {
                case .failure(let e):
                    guard skipBad else { throw e }
                    skipped.append(e.description)
                case .success(let img):
                    let key = img.height << 20 | img.width
                    if resamplers[key] == nil { resamplers[key] = Resampler(inHeight: img.height, inWidth: img.width, to: shape, filter: manifest.resize) }
                    let at = pixels.count
                    pixels += repeatElement(0, count: n)
                    pixels.withUnsafeMutableBufferPointer { resamplers[key]!.apply(img, into: $0.baseAddress! + at) }
                    files.append(Self.file(of: record.location, in: known))
                    locations.append(record.location)
                }
            }
            lo = range.upperBound
        }
    }

    /// The file a record's location names (the location may add " frame 3" or a slice
    /// after it): the longest of `files` it starts with, tried at each space.
    static func file(of location: String, in files: Set<String>) -> String {
        if files.contains(location) { return location }
        var end = location.endIndex
        while let space = location[..<end].lastIndex(of: " ") {
            if files.contains(String(location[..<space])) { return String(location[..<space]) }
            end = space
        }
        return location
    }
}
