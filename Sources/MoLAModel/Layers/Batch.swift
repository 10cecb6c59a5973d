import MoLATensor

/// How the images of a batch are laid out: grouped by task, each group contiguous (the
/// loader sorts a mixed batch by task once, so adapted layers and heads take each group as
/// a slice, with no gathering).
public struct BatchLayout: Equatable, Sendable {
    public struct Group: Equatable, Sendable {
        public var task: Int
        public var range: Range<Int>
    }

    public var count: Int
    public var groups: [Group]
    public var training: Bool
    /// Per task id, a factor on that task's mean cross-entropy (nil: 1). Data-parallel
    /// training sets N·n_t(rank)/n_t(global), so that averaging the ranks' gradients gives
    /// the gradient of Σ_t mean CE_t over the global batch.
    public var lossWeights: [Double]?

    /// From per-image task ids already in grouped order (each task's images contiguous).
    public init(tasks: [Int32], training: Bool) {
        count = tasks.count
        self.training = training
        var groups: [Group] = []
        var start = 0
        for i in 1..<(tasks.count + 1) where i == tasks.count || tasks[i] != tasks[start] {
            groups.append(Group(task: Int(tasks[start]), range: start..<i))
            start = i
        }
        precondition(Set(groups.map(\.task)).count == groups.count, "a batch must be grouped by task (sort it first)")
        self.groups = groups
    }

    /// A stable order of `tasks` that brings each task's images together (task order).
    public static func groupingOrder(_ tasks: [Int32]) -> [Int] {
        tasks.indices.sorted { (tasks[$0], $0) < (tasks[$1], $1) }
    }
}

/// The height, width and channels of the images a layer sees.
public struct FeatureShape: Equatable, Sendable, CustomStringConvertible {
    public var height: Int, width: Int, channels: Int
    public init(height: Int, width: Int, channels: Int) { self.height = height; self.width = width; self.channels = channels }
    public var pixels: Int { height * width }
    public var count: Int { height * width * channels }
    public var description: String { "\(height)×\(width)×\(channels)" }
}

extension Tensor {
    /// Reuses this tensor's storage when it has the right shape and no other owner;
    /// otherwise makes a new one. Layers keep their outputs between steps this way.
    mutating func reuse(_ shape: [Int]) {
        if self.shape != shape { self = Tensor(uninitialized: shape) }
    }
}
