import MoLAModel

extension Method {
    /// LTB, learning to branch: a column per task whose input at each level is one parent
    /// column, drawn by Gumbel-softmax from learned logits; evaluation keeps the likeliest.
    public static let ltb: Method = {
        var m = Method(name: "ltb", summary: "learning to branch: a column per task, parents drawn by Gumbel-softmax") { r in
            CrossStitchClassifier(store: r.store, config: r.config.backboneConfig, input: r.input, classes: r.classes, mixing: .branching)
        }
        m.backbones = .several
        return m
    }()
}
