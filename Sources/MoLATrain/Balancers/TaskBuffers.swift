/// A running vector per task of the run (the size of the shared parameters), for the
/// combiners that average gradients over steps (DB-MTL, MoCo); checkpointed whole, so a
/// resumed run continues exactly (T × the shared parameters' count numbers in the
/// checkpoint's state).
struct TaskBuffers {
    var rows: [[Double]] = []

    /// Task `t`'s vector, zeros of `width` the first time.
    mutating func row(_ t: Int, width: Int) -> [Double] {
        while rows.count <= t { rows.append([]) }
        if rows[t].isEmpty { rows[t] = Array(repeating: 0, count: width) }
        return rows[t]
    }

    var state: [String: [Double]] {
        get {
            let width = rows.map(\.count).max() ?? 0  // a task never seen is a row of zeros
            return ["rows": [Double(rows.count)], "width": [Double(width)],
                    "values": rows.flatMap { $0.isEmpty ? Array(repeating: 0, count: width) : $0 }]
        }
        set {
            let n = Int(newValue["rows"]?.first ?? 0), w = Int(newValue["width"]?.first ?? 0), v = newValue["values"] ?? []
            guard v.count == n * w else { return }
            rows = (0..<n).map { Array(v[($0 * w)..<(($0 + 1) * w)]) }
        }
    }
}
