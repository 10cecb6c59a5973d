/// What a task's label is. `single`: one class of the task's classes (softmax and
/// cross-entropy). `multi`: any subset of the task's labels, each present or absent (a
/// sigmoid and binary cross-entropy per label, as chest X-ray findings are).
///
/// In memory a multi-label record's labels are one `Int32` bit set (bit k: label k is
/// present), so every batch, filter and MPI exchange carries it like a class index; on
/// disk shards keep MedMNIST's N×L 0/1 rows.
public enum LabelKind: String, Codable, CaseIterable, Sendable {
    case single, multi

    /// The most labels a multi-label task may have (the bits of an `Int32` below its sign).
    public static let maxLabels = 31

    /// Whether label `k` is present in the bit set `labels`.
    @inline(__always) public static func has(_ labels: Int32, _ k: Int) -> Bool { labels >> Int32(k) & 1 == 1 }

    /// The bit set of a row of 0/1 values.
    public static func bitSet<S: Sequence>(_ row: S) -> Int32 where S.Element: BinaryInteger {
        var bits: Int32 = 0
        for (k, v) in row.enumerated() where v != 0 { bits |= 1 << Int32(k) }
        return bits
    }
}
