import MoLAModel

extension Method {
    /// Cross-Stitch networks: one backbone column per task, learned mixing of the columns'
    /// maps after the stem and every stage but the last.
    public static let crossStitch: Method = {
        var m = Method(name: "cross-stitch", summary: "a column per task, mixed by learned units") { r in
            CrossStitchClassifier(store: r.store, config: r.config.backboneConfig, input: r.input, classes: r.classes)
        }
        m.backbones = .several
        return m
    }()
}
