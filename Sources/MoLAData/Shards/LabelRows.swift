import MoLASupport

/// How `labels.npy` holds a record's label. A dataset of single-label tasks only keeps
/// one int64 class index per record (shape N). A dataset with a multi-label task keeps
/// rows of `width` int64 values (shape N×L, L its most labels): a multi-label record's 0/1
/// per label (then 0 up to the width), a single-label record's class index and then −1.
struct LabelRows: Equatable {
    let kinds: [LabelKind]
    /// Values per record; nil: a 1-D array.
    let width: Int?

    init(_ tasks: [DatasetIndex.TaskInfo]) {
        kinds = tasks.map(\.labelKind)
        width = kinds.contains(.multi) ? tasks.filter { $0.labelKind == .multi }.map(\.classes.count).max()! : nil
    }

    var columns: Int { width ?? 1 }

    /// The shape of the labels of `n` records.
    func shape(_ n: Int) -> [Int] { width.map { [n, $0] } ?? [n] }

    /// Appends the stored row of a record of `task` whose label is `label` (a class index,
    /// or a multi-label task's bit set).
    func append(_ label: Int, task: Int, to out: inout [Int64]) {
        guard let width else { out.append(Int64(label)); return }
        if kinds[task] == .multi {
            for k in 0..<width { out.append(LabelKind.has(Int32(truncatingIfNeeded: label), k) ? 1 : 0) }
        } else {
            out.append(Int64(label))
            for _ in 1..<width { out.append(-1) }
        }
    }

    /// The in-memory label of a stored row (`row` points at `columns` values).
    func label(_ row: UnsafePointer<Int64>, task: Int) -> Int32 {
        guard width != nil, (0..<kinds.count).contains(task), kinds[task] == .multi else { return Int32(truncatingIfNeeded: row[0]) }
        return LabelKind.bitSet(UnsafeBufferPointer(start: row, count: columns))
    }
}
