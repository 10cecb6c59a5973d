import Foundation
import MoLAData

/// `mola-train compare`: one table in the paper's shape from finished runs. Runs of one
/// method (several seeds) become one row of mean ± standard deviation.
public struct Comparison: Codable, Equatable, Sendable {
    public struct Row: Codable, Equatable, Sendable {
        public var method: String
        public var runs: [String]
        public var seeds: [UInt64]
        /// Per task, in the table's task order: mean and sample standard deviation (nil for one seed).
        public var mean: [Double]
        public var std: [Double?]
        public var averageMean: Double
        public var averageStd: Double?
        public var parameters: ParameterCounts
        /// Δm% against single-task: mean over tasks of the relative accuracy change.
        public var deltaM: Double?
        public var trainSeconds: Double
    }
    public var tasks: [String]
    public var rows: [Row]

    static let order = ["single-task", "uniform", "mmoe", "mola-grad", "mola-router"]

    public init(runDirectories: [String]) throws {
        let reports = try runDirectories.map { ($0, try RunReport.read($0)) }
        guard let first = reports.first else { throw DataError(file: ".", "no run folders given", fix: "mola-train compare runs/*") }
        tasks = first.1.tasks
        for (dir, r) in reports where Set(r.tasks) != Set(tasks) {
            throw DataError(file: dir + "/report.json", "this run's tasks (\(r.tasks.joined(separator: ", "))) differ from \(first.0)'s (\(tasks.joined(separator: ", ")))",
                            fix: "compare runs made on the same tasks")
        }
        let byMethod = Dictionary(grouping: reports, by: { $0.1.method })
        let methods = byMethod.keys.sorted { (Self.order.firstIndex(of: $0) ?? 99, $0) < (Self.order.firstIndex(of: $1) ?? 99, $1) }
        let tasks = self.tasks
        rows = methods.map { m in
            let rs = byMethod[m]!.sorted { $0.1.seed < $1.1.seed }
            let perTask = tasks.map { t in rs.map { $0.1.test.perTask[t] ?? 0 } }
            let avgs = rs.map { $0.1.test.average }
            return Row(method: m, runs: rs.map(\.0), seeds: rs.map(\.1.seed), mean: perTask.map(Self.mean), std: perTask.map(Self.std),
                       averageMean: Self.mean(avgs), averageStd: Self.std(avgs), parameters: rs[0].1.parameters, deltaM: nil,
                       trainSeconds: Self.mean(rs.map(\.1.trainSeconds)))
        }
        if let st = rows.first(where: { $0.method == "single-task" }) {
            for i in rows.indices {
                rows[i].deltaM = 100 * zip(rows[i].mean, st.mean).map { ($0 - $1) / max($1, 1e-9) }.reduce(0, +) / Double(tasks.count)
            }
        }
    }

    static func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(1, v.count)) }
    static func std(_ v: [Double]) -> Double? {
        guard v.count > 1 else { return nil }
        let m = mean(v)
        return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
    }

    public var markdown: String {
        func cell(_ m: Double, _ s: Double?, best: Bool) -> String {
            let text = s.map { String(format: "%.2f ± %.2f", m, $0) } ?? String(format: "%.2f", m)
            return best ? "**\(text)**" : text
        }
        let bestTask = tasks.indices.map { t in rows.map { $0.mean[t] }.max() ?? 0 }
        let bestAvg = rows.map(\.averageMean).max() ?? 0
        var md = "| Method | " + tasks.joined(separator: " | ") + " | Avg | Δm% | Params (total) | Adapters | Router/gates | Seeds | Train s |\n"
        md += "|---|" + String(repeating: "---:|", count: tasks.count + 7) + "\n"
        for r in rows {
            md += "| \(r.method) | " + tasks.indices.map { cell(r.mean[$0], r.std[$0], best: r.mean[$0] == bestTask[$0]) }.joined(separator: " | ")
            md += " | " + cell(r.averageMean, r.averageStd, best: r.averageMean == bestAvg)
            md += " | " + (r.deltaM.map { String(format: "%+.2f", $0) } ?? "–")
            md += " | \(r.parameters.total) | \(r.parameters.adapters) | \(r.parameters.router) | \(r.seeds.count) | \(String(format: "%.0f", r.trainSeconds)) |\n"
        }
        md += "\nTop-1 test accuracy (%), mean ± sample std over seeds; **bold** = best mean per column. "
        md += "Each run's test figure comes from its best-on-validation checkpoint. Δm% = mean over tasks of (acc − acc_single-task)/acc_single-task.\n"
        return md
    }
}
