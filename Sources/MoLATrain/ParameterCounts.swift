import MoLAReport
import MoLATensor

extension ParameterCounts {
    /// Counts by role: shared and task-specific modules as backbone, routers and gates together.
    public init(_ store: ParameterStore) {
        self.init()
        for e in store.entries where e.trainable {
            let n = e.count
            total += n
            switch e.role {
            case .head: heads += n
            case .router, .gate: router += n
            case .adapter: adapters += n
            case .shared, .task: backbone += n
            }
        }
    }
}
