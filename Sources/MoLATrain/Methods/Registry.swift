extension Method {
    /// Every method, in the order compare tables list them: the single-task reference, hard
    /// sharing, the multi-expert and multi-column baselines, then the adapter methods.
    public static let all: [Method] = [.singleTask, .uniform, .mmoe, .cgc, .ple, .dselectK, .crossStitch, .ltb, .mtan, .hydraLora, .molaGrad, .molaRouter]

    /// Keys some methods read and others do not (from each method's `ownKeys`).
    static var methodSpecificKeys: [String] { Array(Set(all.flatMap(\.ownKeys))).sorted() }
}
