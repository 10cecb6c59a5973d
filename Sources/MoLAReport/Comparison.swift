import Foundation
import MoLASupport

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
        /// Mean and std over seeds of the mean test AUC over tasks (nil: not measured for every run).
        public var aucMean: Double?
        public var aucStd: Double?
        public var parameters: ParameterCounts
        /// Δm% against single-task: mean over tasks of the relative accuracy change.
        public var deltaM: Double?
        public var trainSeconds: Double
        /// Mean over seeds of the tasks' mean pairwise shared-gradient cosine (nil: not measured).
        public var conflictCosine: Double?
    }
    public var tasks: [String]
    public var rows: [Row]
    /// The runs' reports, for the plots (compare.json holds only the table).
    var reports: [(dir: String, report: RunReport)] = []
    enum CodingKeys: String, CodingKey { case tasks, rows }

    public static func == (a: Comparison, b: Comparison) -> Bool { a.tasks == b.tasks && a.rows == b.rows }

    /// - Parameters:
    ///   - rank: a method's place in the table (its rows sort by it, then by label).
    ///   - baseline: the method whose accuracies Δm% is relative to (single-task).
    public init(runDirectories: [String], rank: (String) -> Int = { _ in 0 }, baseline: String? = nil) throws {
        let reports = try runDirectories.map { ($0, try RunReport.read($0)) }
        self.reports = reports.map { (dir: $0.0, report: $0.1) }
        guard let first = reports.first else { throw DataError(file: ".", "no run folders given", fix: "mola-train compare runs/*") }
        tasks = first.1.tasks
        for (dir, r) in reports where Set(r.tasks) != Set(tasks) {
            throw DataError(file: dir + "/report.json", "this run's tasks (\(r.tasks.joined(separator: ", "))) differ from \(first.0)'s (\(tasks.joined(separator: ", ")))",
                            fix: "compare runs made on the same tasks")
        }
        // One row per method and variant (per-task BN runs are not averaged with the method's).
        let byMethod = Dictionary(grouping: reports, by: { $0.1.label })
        let methodOf = Dictionary(reports.map { ($0.1.label, $0.1.method) }, uniquingKeysWith: { a, _ in a })
        let methods = byMethod.keys.sorted { (rank(methodOf[$0]!), $0) < (rank(methodOf[$1]!), $1) }
        let tasks = self.tasks
        rows = methods.map { m in
            let rs = byMethod[m]!.sorted { $0.1.seed < $1.1.seed }
            let perTask = tasks.map { t in rs.map { $0.1.test.perTask[t] ?? 0 } }
            let avgs = rs.map { $0.1.test.average }
            let aucs = rs.compactMap { $0.1.testAUCAverage }
            return Row(method: m, runs: rs.map(\.0), seeds: rs.map(\.1.seed), mean: perTask.map(Self.mean), std: perTask.map(Self.std),
                       averageMean: Self.mean(avgs), averageStd: Self.std(avgs),
                       aucMean: aucs.count == rs.count ? Self.mean(aucs) : nil, aucStd: aucs.count == rs.count ? Self.std(aucs) : nil,
                       parameters: rs[0].1.parameters, deltaM: nil,
                       trainSeconds: Self.mean(rs.map(\.1.trainSeconds)),
                       conflictCosine: rs.allSatisfy { $0.1.conflictCosine != nil } ? Self.mean(rs.compactMap(\.1.conflictCosine)) : nil)
        }
        if let baseline, let st = rows.first(where: { $0.method == baseline }) {
            for i in rows.indices {
                rows[i].deltaM = 100 * zip(rows[i].mean, st.mean).map { ($0 - $1) / max($1, 1e-9) }.reduce(0, +) / Double(tasks.count)
            }
        }
    }

    /// compare.md (the table and its plots), compare.json, the plots as SVG files, and
    /// compare.html with everything inlined.
    public func write(to out: String) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        try FileIO.writeAtomically(String(decoding: try enc.encode(self), as: UTF8.self) + "\n", to: out + "/compare.json")
        try FileIO.writeAtomically(testAccuracyFigure, to: out + "/test-accuracy.svg")
        var md = "# Comparison\n\n" + markdown + "\n![test accuracy per task](test-accuracy.svg)\n"
        try? FileManager.default.removeItem(atPath: out + "/spectra")
        let layers = spectraAcrossMethods
        if !layers.isEmpty {
            try FileManager.default.createDirectory(atPath: out + "/spectra", withIntermediateDirectories: true)
            md += "\n## The same layer across methods\n\nSorted singular values over σ₁ (log scale) of each method's shared W "
            md += "and, where it has adapters, the mean over tasks of W+ΔW_t's; first seed of each method.\n\n"
            for (i, (layer, svg)) in layers.enumerated() {
                let file = "spectra/\(String(format: "%02d", i))-\(layer).svg"
                try FileIO.writeAtomically(svg, to: out + "/" + file)
                md += "![\(layer)](\(file)) "
            }
            md += "\n"
        }
        try FileIO.writeAtomically(md, to: out + "/compare.md")
        let runs = "<h2>Runs</h2>\n<table>\n<tr><th>method</th><th>seed</th><th>run</th><th>config hash</th><th>dataset index.json (SHA-256)</th></tr>\n"
            + reports.map { d, r in
                "<tr><td>\(HTML.escape(r.label))</td><td>\(r.seed)</td><td>\(HTML.escape(d))</td><td><code>\(r.configHash.prefix(16))</code></td>"
                    + "<td><code>\(HTML.escape(String((r.receipt?.datasetIndexHash ?? "–").prefix(16))))</code></td></tr>\n"
            }.joined() + "</table>\n"
        try FileIO.writeAtomically(HTML.page(title: "Comparison — " + rows.map(\.method).joined(separator: ", "), markdown: md,
                                             image: HTML.svgFile(in: out), extra: runs), to: out + "/compare.html")
    }

    /// Test accuracy per task, a bar per method with its seeds' error bar; with more methods
    /// than the palette has colours, the average over tasks per method instead.
    var testAccuracyFigure: String {
        guard rows.count > Plot.palette.count else {
            return Plot.bars(title: "Test accuracy per task, mean ± std over seeds", xTitle: "task", yTitle: "top-1 accuracy (%)", categories: tasks + ["average"],
                             series: rows.map { .init(name: $0.method, values: $0.mean + [$0.averageMean], errors: $0.std + [$0.averageStd]) }, yMax: 100)
        }
        return Plot.bars(title: "Average test accuracy over tasks, mean ± std over seeds", xTitle: "method", yTitle: "top-1 accuracy (%)",
                         categories: rows.map(\.method), series: [.init(name: "average", values: rows.map(\.averageMean), errors: rows.map(\.averageStd))], yMax: 100)
    }

    /// Per layer that two or more methods share (in the first run's layer order), one plot
    /// of every method's singular values, where they need no more lines than the palette has colours.
    var spectraAcrossMethods: [(String, String)] {
        let firstOfMethod = rows.compactMap { row in reports.first { $0.dir == row.runs.first }?.report }
        guard firstOfMethod.count > 1 else { return [] }
        let names = firstOfMethod.flatMap { $0.spectra.map(\.layer) }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return names.compactMap { layer in
            var series: [Plot.Series] = []
            for r in firstOfMethod {
                guard let s = r.spectra.first(where: { $0.layer == layer }), let w = s.shared.values else { continue }
                series.append(.init(name: "\(r.label): W", x: w.indices.map { Double($0 + 1) }, y: w.map { log10(max($0, 1e-12)) }))
                let adapted = s.adapted.compactMap(\.values).filter { $0.count == w.count }
                if !adapted.isEmpty {
                    let mean = w.indices.map { i in adapted.map { $0[i] }.reduce(0, +) / Double(adapted.count) }
                    series.append(.init(name: "\(r.label): W+ΔW_t", x: mean.indices.map { Double($0 + 1) }, y: mean.map { log10(max($0, 1e-12)) }, style: .faint))
                }
            }
            // Beyond the palette's colours the lines cannot be told apart.
            guard series.count > 1, series.count <= Plot.palette.count else { return nil }
            return (layer, Plot.lines(title: "\(layer): sorted singular values", xTitle: "index i", yTitle: "log10 σi / σ1", series: series))
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
        let bestAUC = rows.compactMap(\.aucMean).max()
        var md = "| Method | " + tasks.joined(separator: " | ") + " | Avg | AUC | Δm% | Params (total) | Adapters | Router/gates | Seeds | Train s | Task cos |\n"
        md += "|---|" + String(repeating: "---:|", count: tasks.count + 9) + "\n"
        for r in rows {
            md += "| \(r.method) | " + tasks.indices.map { cell(r.mean[$0], r.std[$0], best: r.mean[$0] == bestTask[$0]) }.joined(separator: " | ")
            md += " | " + cell(r.averageMean, r.averageStd, best: r.averageMean == bestAvg)
            md += " | " + (r.aucMean.map { m in
                let text = r.aucStd.map { String(format: "%.3f ± %.3f", m, $0) } ?? String(format: "%.3f", m)
                return m == bestAUC ? "**\(text)**" : text
            } ?? "–")
            md += " | " + (r.deltaM.map { String(format: "%+.2f", $0) } ?? "–")
            md += " | \(r.parameters.total) | \(r.parameters.adapters) | \(r.parameters.router) | \(r.seeds.count) | \(String(format: "%.0f", r.trainSeconds))"
            md += " | " + (r.conflictCosine.map { String(format: "%.3f", $0) } ?? "–") + " |\n"
        }
        md += "\nTop-1 test accuracy (%), mean ± sample std over seeds; **bold** = best mean per column. "
        md += "Each run's test figure comes from its best-on-validation checkpoint. Δm% = mean over tasks of (acc − acc_single-task)/acc_single-task. "
        md += "AUC = mean over tasks of the test ROC AUC (MedMNIST's definition), mean ± std over seeds. "
        md += "Task cos = mean pairwise cosine of the tasks' gradients of the shared parameters at the last evaluation (< 0: conflict).\n"
        return md
    }
}
