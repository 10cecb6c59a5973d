import Foundation

/// Trainable parameters by role, as the paper's tables count them.
public struct ParameterCounts: Codable, Equatable, Sendable {
    public var total = 0, backbone = 0, adapters = 0, router = 0, heads = 0

    public init() {}

    public static func + (a: Self, b: Self) -> Self {
        var r = a
        r.total += b.total; r.backbone += b.backbone; r.adapters += b.adapters; r.router += b.router; r.heads += b.heads
        return r
    }
}

/// The paper's spectral analysis: per convolution, the singular values of its weight as a
/// C_out × (k·k·C_in) matrix; K99 = the fewest values whose sum reaches 99% of the total.
public struct LayerSpectrum: Codable, Equatable, Sendable {
    public struct Summary: Codable, Equatable, Sendable {
        public var k99: Int
        public var top: Double
        public var rank: Int
        /// Every singular value over σ₁, largest first: the distribution the paper compares
        /// (absent in reports written before it was kept).
        public var values: [Double]?

        public init(k99: Int, top: Double, rank: Int, values: [Double]?) {
            self.k99 = k99; self.top = top; self.rank = rank; self.values = values
        }
    }
    public var layer: String
    public var rows: Int, columns: Int
    /// The shared weight W.
    public var shared: Summary
    /// W + ΔW_t for each adapter t (empty for layers without adapters).
    public var adapted: [Summary]

    public init(layer: String, rows: Int, columns: Int, shared: Summary, adapted: [Summary]) {
        self.layer = layer; self.rows = rows; self.columns = columns; self.shared = shared; self.adapted = adapted
    }
}

/// How the tasks' gradients of the shared parameters relate, for one shared stage.
public struct TaskConflict: Codable, Equatable, Sendable {
    /// Task × task cosine (< 0: they conflict).
    public var cosine: [[Double]]
    /// The fraction of task pairs whose cosine is negative.
    public var conflicting: Double
    /// 2|g_i||g_j| / (|g_i|² + |g_j|²) per pair.
    public var magnitudeSimilarity: [[Double]]

    public init(cosine: [[Double]], conflicting: Double, magnitudeSimilarity: [[Double]]) {
        self.cosine = cosine
        self.conflicting = conflicting
        self.magnitudeSimilarity = magnitudeSimilarity
    }

    /// The mean of a square matrix's off-diagonal entries (1 for a single task).
    public static func meanOffDiagonal(_ m: [[Double]]) -> Double {
        let n = m.count
        guard n > 1 else { return 1 }
        return (0..<n).flatMap { i in (0..<n).filter { $0 != i }.map { m[i][$0] } }.reduce(0, +) / Double(n * (n - 1))
    }
}
