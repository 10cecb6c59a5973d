import MoLASupport

/// Carves splits out of sources that do not fix them, stratified by class and seeded, so
/// every class keeps its share in every split and the same seed gives the same split.
enum SplitCarver {
    /// A stable 64-bit hash of a text (FNV-1a), to name random streams.
    static func stream(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// Assigns test/val/train to `members` (record ids with their labels) per class:
    /// the first round(test·n) of a seeded permutation go to test, the next round(val·n) to val.
    static func carve(_ members: [(id: Int, label: Int)], test: Double, val: Double, seed: UInt64,
                      name: String, assign: (Int, Split) -> Void) {
        let byLabel = Dictionary(grouping: members, by: \.label)
        for label in byLabel.keys.sorted() {
            var ids = byLabel[label]!.map(\.id)
            var rng = RandomGenerator(seed: seed, stream: stream("\(name)/class:\(label)"))
            rng.shuffle(&ids)
            let nTest = Int((test * Double(ids.count)).rounded())
            let nVal = min(ids.count - nTest, Int((val * Double(ids.count)).rounded()))
            for (k, id) in ids.enumerated() {
                assign(id, k < nTest ? .test : k < nTest + nVal ? .val : .train)
            }
        }
    }
}
