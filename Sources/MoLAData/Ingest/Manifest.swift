import Foundation
import MoLASupport

public enum Split: String, Codable, CaseIterable, Comparable, Sendable {
    case train, val, test
    public static func < (a: Split, b: Split) -> Bool { a.order < b.order }
    var order: Int { Split.allCases.firstIndex(of: self)! }
}

/// A dataset definition from `data-manifests/*.yaml`: tasks (or domains), their sources,
/// how splits are made, and the shape every image is brought to. See the README's
/// "Manifests" section for every key.
public struct Manifest {
    public enum Kind: String, Codable, CaseIterable, Sendable { case tasks, domains }

    public var file: String
    public var name: String
    public var description: String
    public var kind: Kind
    public var shape: ImageShape
    public var resize: ResizeFilter
    public var seed: UInt64
    /// Fraction of each task's train records carved out as `val` when the task has no val.
    public var validation: Double
    public var shardBytes: Int
    public var compression: Zlib.Compression
    public var tasks: [TaskSpec]
    /// SHA-256 of the manifest file's bytes.
    public var sha256: String

    public struct TaskSpec {
        public var name: String
        /// Class names (a multi-label task's label names); nil means "the sorted folder
        /// names" of the task's PNG trees.
        public var classes: [String]?
        /// `labels: multi`: each record has any subset of the task's labels.
        public var labels: LabelKind = .single
        public var sources: [SourceSpec]
        public var at: ConfigValue
    }

    public struct SourceSpec {
        /// The three tree formats are one reader: a class-folder tree of PNG and JPEG files,
        /// each decoded by what its bytes are (a folder may mix them).
        public enum Format: String, CaseIterable, Sendable {
            case idx, csv, npz, pngTree = "png-tree", jpegTree = "jpeg-tree", imageTree = "image-tree", dicomTree = "dicom-tree", nifti
            var isImageTree: Bool { self == .pngTree || self == .jpegTree || self == .imageTree }
            /// Folder trees: one class per folder under a root (the class names may come from them).
            var isTree: Bool { isImageTree || self == .dicomTree || self == .nifti }
        }
        public enum SplitRule: Equatable {
            /// Every record of the source feeds this split.
            case fixed(Split)
            /// Fractions carved (stratified by class, seeded) for test/val; the rest is train.
            case carve(test: Double, val: Double)
            /// The archive's own `train_*`, `val_*`, `test_*` arrays decide (MedMNIST).
            case fromArchive
        }
        public var format: Format
        /// Resolved absolute paths: [images, labels] for idx, [path] for csv/npz, [root] for the trees.
        public var paths: [String]
        public var split: SplitRule
        // csv only
        public var csvShape: ImageShape?
        public var labelColumn: CSVPixelTable.LabelColumn = .last
        public var header: Bool?
        public var pixelMax: Double = 255
        /// Tree formats: a `file,label` table giving each file's class instead of its folder
        /// (for a multi-label task: a `file` column and one 0/1 column per label).
        public var labels: String?
        // dicom-tree and nifti
        public var window: DICOMWindow = .file
        public var frame: Int?
        /// nifti: slices across this axis (0 x, 1 y, 2 z), every n-th, constant ones skipped.
        public var slices = SliceRule()
        public struct SliceRule: Equatable {
            public var axis = 2, every = 1, skipEmpty = true
        }
        public var at: ConfigValue
    }

    static let topKeys = ["name", "description", "kind", "image", "resize", "seed", "validation",
                          "shard_size_mib", "compression", "tasks"]
    static let taskKeys = ["name", "classes", "num_classes", "labels", "sources"]
    static let sourceKeys: [SourceSpec.Format: [String]] = [
        .idx: ["format", "images", "labels", "split"],
        .csv: ["format", "path", "image_shape", "label_column", "header", "pixel_max", "split"],
        .npz: ["format", "path", "split"],
        .pngTree: ["format", "root", "split", "labels"],
        .jpegTree: ["format", "root", "split", "labels"],
        .imageTree: ["format", "root", "split", "labels"],
        .dicomTree: ["format", "root", "split", "window", "frame", "labels"],
        .nifti: ["format", "root", "split", "window", "slices", "labels"],
    ]

    /// Reads and validates a manifest; every problem names the file, line and key.
    public init(path: String) throws {
        let bytes = try FileIO.read(path)
        let text = String(decoding: bytes, as: UTF8.self)
        PathExpansion.preloadPythonPackages(in: text)
        let root = try ConfigValue.load(file: path, text: text)
        file = path
        sha256 = Hash.sha256Hex(bytes)
        let baseDir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let top = try root.mapping(allowed: Self.topKeys)
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        name = try top["name"]?.string() ?? stem
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
            throw top.at("name").error("dataset name '\(name)' must be a plain file name")
        }
        description = try top["description"]?.string() ?? ""
        kind = try top["kind"]?.choice(Kind.self) ?? .tasks
        let image = try top.required("image", hint: "e.g. image: {height: 28, width: 28, channels: 1}")
            .mapping(allowed: ["height", "width", "channels"])
        shape = ImageShape(height: try image.required("height").int(in: 1...4096),
                           width: try image.required("width").int(in: 1...4096),
                           channels: try image.required("channels").int(in: 1...3))
        guard shape.channels != 2 else {
            throw image.at("channels").error("channels must be 1 (grey) or 3 (RGB)")
        }
        resize = try top["resize"]?.choice(ResizeFilter.self) ?? .auto
        seed = UInt64(try top["seed"]?.int(in: 0...Int.max) ?? 0)
        validation = try top["validation"]?.double(in: 0...0.9) ?? 0.1
        shardBytes = try (top["shard_size_mib"]?.double(in: 0.001...4000) ?? 64).mibBytes
        compression = try top["compression"]?.choice(Zlib.Compression.self) ?? .fast
        let taskList = try top.required("tasks", hint: "list the tasks (or domains), each with name, classes and sources").list()
        guard !taskList.isEmpty else { throw top.at("tasks").error("the task list is empty") }
        tasks = try taskList.map { try Self.task($0, baseDir: baseDir) }
        var seen = Set<String>()
        for t in tasks where !seen.insert(t.name).inserted {
            throw t.at.error("two tasks are named '\(t.name)'", fix: "give every task a distinct name")
        }
        if kind == .domains, let first = tasks.first?.classes {
            for t in tasks.dropFirst() where t.classes != first {
                throw t.at.error("domain '\(t.name)' has other classes than '\(tasks[0].name)'",
                                 fix: "domains share one label space: give every domain the same classes")
            }
        }
    }

    static func task(_ v: ConfigValue, baseDir: String) throws -> TaskSpec {
        let m = try v.mapping(allowed: taskKeys)
        let name = try m.required("name").string()
        var classes = try m["classes"]?.strings()
        if let n = try m["num_classes"]?.int(in: 1...100_000) {
            guard classes == nil else { throw m.at("num_classes").error("give either classes or num_classes, not both") }
            classes = (0..<n).map(String.init)
        }
        if let c = classes {
            guard !c.isEmpty else { throw m.at("classes").error("the class list is empty") }
            guard Set(c).count == c.count else { throw m.at("classes").error("class names repeat") }
        }
        let labels = try m["labels"]?.choice(LabelKind.self) ?? .single
        if labels == .multi {
            guard let c = classes else {
                throw m.owner.error("multi-label task '\(name)' needs its label names",
                                    fix: "list them in column order, e.g. classes: [atelectasis, cardiomegaly, effusion]")
            }
            guard c.count <= LabelKind.maxLabels else {
                throw m.at("classes").error("a multi-label task may have at most \(LabelKind.maxLabels) labels, this one has \(c.count)",
                                            fix: "split the labels over two tasks")
            }
        }
        let sourceList = try m.required("sources", hint: "each task needs at least one source").list()
        guard !sourceList.isEmpty else { throw m.at("sources").error("the source list is empty") }
        let sources = try sourceList.map { try source($0, baseDir: baseDir) }
        if labels == .multi, let s = sources.first(where: { $0.format == .idx || $0.format == .csv || ($0.format.isTree && $0.labels == nil) }) {
            throw s.at.error("a \(s.format.rawValue) source cannot give task '\(name)' several labels per image",
                             fix: "use an npz archive with N×L labels, or a tree source with `labels: table.csv` holding one 0/1 column per label")
        }
        if classes == nil, sources.contains(where: { !$0.format.isTree }) {
            throw m.owner.error("task '\(name)' needs classes (or num_classes)",
                                fix: "list the class names in label order, e.g. classes: [cat, dog]; only image trees can take them from folder names")
        }
        return TaskSpec(name: name, classes: classes, labels: labels, sources: sources, at: v)
    }

    static func source(_ v: ConfigValue, baseDir: String) throws -> SourceSpec {
        guard case .mapping = v.node else { throw v.error("expected a source mapping with a format key") }
        let loose = try v.mapping(allowed: Array(Set(sourceKeys.values.joined())))
        let format = try loose.required("format", hint: "one of idx, csv, npz, png-tree, jpeg-tree, image-tree, dicom-tree, nifti").choice(SourceSpec.Format.self)
        let m = try v.mapping(allowed: sourceKeys[format]!)
        func path(_ key: String) throws -> String {
            try PathExpansion.expand(try m.required(key).string(), relativeTo: baseDir, at: m.required(key))
        }
        var spec: SourceSpec
        switch format {
        case .idx: spec = SourceSpec(format: format, paths: [try path("images"), try path("labels")], split: .fixed(.train), at: v)
        case .csv: spec = SourceSpec(format: format, paths: [try path("path")], split: .fixed(.train), at: v)
        case .npz: spec = SourceSpec(format: format, paths: [try path("path")], split: .fromArchive, at: v)
        case .pngTree, .jpegTree, .imageTree, .dicomTree, .nifti:
            spec = SourceSpec(format: format, paths: [try path("root")], split: .fixed(.train), at: v)
        }
        if let s = m["split"] { spec.split = try splitRule(s) }
        else if format != .npz {
            throw m.owner.error("missing key 'split' in \(v.keyPath)",
                                fix: "say which split this source feeds (train, val, test) or carve it, e.g. split: {test: 0.2}")
        }
        if format.isTree, m["labels"] != nil { spec.labels = try path("labels") }
        if format == .dicomTree || format == .nifti {
            if let w = m["window"] { spec.window = try window(w) }
            spec.frame = try m["frame"]?.int(in: 0...1_000_000)
        }
        if format == .nifti, let s = m["slices"] {
            let sm = try s.mapping(allowed: ["axis", "every", "skip_empty"])
            if let a = sm["axis"] {
                guard let axis = ["x": 0, "y": 1, "z": 2][try a.string()] else { throw a.error("axis must be x, y or z") }
                spec.slices.axis = axis
            }
            spec.slices.every = try sm["every"]?.int(in: 1...10_000) ?? 1
            spec.slices.skipEmpty = try sm["skip_empty"]?.bool() ?? true
        }
        if format == .csv {
            let shapeList = try m.required("image_shape", hint: "the pixel grid of a row, e.g. image_shape: [28, 28]").list()
            let dims = try shapeList.map { try $0.int(in: 1...4096) }
            guard dims.count == 2 || (dims.count == 3 && [1, 3].contains(dims[2])) else {
                throw m.at("image_shape").error("image_shape must be [height, width] or [height, width, channels]")
            }
            spec.csvShape = ImageShape(height: dims[0], width: dims[1], channels: dims.count == 3 ? dims[2] : 1)
            if let lc = m["label_column"] {
                let s = try lc.string()
                switch s {
                case "last": spec.labelColumn = .last
                case "first": spec.labelColumn = .first
                default: spec.labelColumn = Int(s).map { .index($0) } ?? .name(s)
                }
            }
            spec.header = try m["header"]?.bool()
            spec.pixelMax = try m["pixel_max"]?.double(in: 1e-9...1e9) ?? 255
        }
        return spec
    }

    /// `window: file`, a preset name (ct-lung, ct-abdomen, ct-bone, ct-brain, ct-mediastinum)
    /// or `{center: c, width: w}`.
    static func window(_ v: ConfigValue) throws -> DICOMWindow {
        if case .mapping = v.node {
            let m = try v.mapping(allowed: ["center", "width"])
            return .explicit(center: try m.required("center").double(), width: try m.required("width").double(in: 1...1e9))
        }
        let name = try v.string()
        if name == "file" { return .file }
        guard let preset = DICOMWindow.presets[name] else {
            throw v.error("unknown window '\(name)'",
                          fix: "use file, one of \(DICOMWindow.presets.keys.sorted().joined(separator: ", ")), or {center: c, width: w}")
        }
        return preset
    }

    static func splitRule(_ v: ConfigValue) throws -> SourceSpec.SplitRule {
        if case .mapping = v.node {
            let m = try v.mapping(allowed: ["test", "val"])
            let test = try m["test"]?.double(in: 0...0.95) ?? 0
            let val = try m["val"]?.double(in: 0...0.95) ?? 0
            guard test + val < 1 else { throw v.error("test + val fractions must leave something for train") }
            return .carve(test: test, val: val)
        }
        return .fixed(try v.choice(Split.self))
    }
}

extension Double {
    var mibBytes: Int { Int(self * 1_048_576) }
}
