import Foundation
import MoLASupport

/// `report.json` of a run: what `compare` reads and the Markdown report shows.
public struct RunReport: Codable, Equatable, Sendable {
    public struct Accuracy: Codable, Equatable, Sendable {
        /// Top-1 accuracy in %, per task in run order.
        public var perTask: [String: Double]
        public var average: Double
        public init(perTask: [String: Double], average: Double) { self.perTask = perTask; self.average = average }
    }
    public var schema = "mola-report/1"
    public var name: String
    public var method: String
    public var seed: UInt64
    public var configHash: String
    public var dataset: String
    public var tasks: [String]
    public var test: Accuracy
    public var validation: Accuracy
    public var parameters: ParameterCounts
    public var steps: Int
    public var epochs: Int
    public var bestStep: Int
    public var trainSeconds: Double
    public var trainImagesPerSecond: Double
    public var threads: Int
    /// task × K mean router weights on the test split (MoLA-Router).
    public var routerWeights: [[Double]]?
    public var spectra: [LayerSpectrum]
    /// Single-task runs: one sub-run per task (folder relative to this run).
    public var subRuns: [String]?
    /// What it takes to reproduce the numbers beyond seed, config hash and threads (absent
    /// in reports written before it was kept).
    public var receipt: Receipt?
    /// A setting that makes this run a variant of its method (`per-task BN`), so compare
    /// gives it its own row; nil for the method as designed.
    public var variant: String?
    /// The run's config as the keys a user writes (`optimizer.lr` → `0.05`).
    public var settings: [String: String]?
    /// Test AUC, balanced accuracy, recall per class and confusion matrix, per task.
    public var testMetrics: [String: ClassificationMetrics]?
    /// The class names of each task, for the confusion matrices.
    public var classNames: [String: [String]]?

    /// The mean test AUC over the tasks; nil when a task's is undefined or not measured.
    public var testAUCAverage: Double? {
        testMetrics.flatMap { m in ClassificationMetrics.meanIfDefined(tasks.map { m[$0]?.auc ?? nil }) }
    }
    /// The conflict diagnostics of the last evaluation, per shared stage ("all": the whole
    /// shared part); nil for one task, MoLA-Router and runs under mpirun.
    public var conflict: [String: TaskConflict]?
    /// Mean pairwise cosine of the tasks' shared gradients at the last evaluation.
    public var conflictCosine: Double? { conflict?["all"].map { TaskConflict.meanOffDiagonal($0.cosine) } }

    /// The last evaluation's conflict diagnostics in metrics.jsonl records.
    public static func lastConflict(_ metrics: [MetricsRecord]) -> [String: TaskConflict]? {
        metrics.last { $0.evaluation?.conflict != nil }?.evaluation?.conflict
    }
    /// Whether `routerWeights` are expert gates (MMoE, CGC, DSelect-k) rather than adapter routes.
    /// What `routerWeights` mix: "adapter" (MoLA-Router, HydraLoRA) or "expert" (the
    /// gates of MMoE, CGC, DSelect-k); absent in reports written before it was kept.
    public var routerWeightsOver: String?
    var gatesMixExperts: Bool { routerWeightsOver == "expert" }

    /// The row label of compare: the method, and its variant if any.
    public var label: String { variant.map { "\(method) + \($0)" } ?? method }

    public struct Receipt: Codable, Equatable, Sendable {
        /// SHA-256 of the dataset's index.json, which holds every shard's checksum.
        public var datasetIndexHash: String
        public var toolVersion: String
        /// The command of the process that finished the run (a resumed run: the resume).
        public var commandLine: [String]
        /// The processor the run finished on (`Machine.description`); absent in older reports.
        public var machine: String?
        /// When the run finished, ISO 8601 in UTC; absent in older reports.
        public var finished: String?

        public init(dataset: String, commandLine: [String] = CommandLine.arguments, machine: String? = Machine.description, finished: Date = Date()) {
            datasetIndexHash = (try? Hash.sha256Hex(file: dataset + "/index.json")) ?? "unreadable: \(dataset)/index.json"
            toolVersion = MoLAVersion.string
            self.commandLine = commandLine
            self.machine = machine
            self.finished = ISO8601DateFormatter().string(from: finished)
        }
    }

    public init(name: String, method: String, seed: UInt64, configHash: String, dataset: String, tasks: [String], test: Accuracy,
                validation: Accuracy, parameters: ParameterCounts, steps: Int, epochs: Int, bestStep: Int, trainSeconds: Double,
                trainImagesPerSecond: Double, threads: Int, routerWeights: [[Double]]?, spectra: [LayerSpectrum], subRuns: [String]?,
                receipt: Receipt? = nil, variant: String? = nil) {
        self.name = name; self.method = method; self.seed = seed; self.configHash = configHash; self.dataset = dataset
        self.tasks = tasks; self.test = test; self.validation = validation; self.parameters = parameters; self.steps = steps
        self.epochs = epochs; self.bestStep = bestStep; self.trainSeconds = trainSeconds; self.trainImagesPerSecond = trainImagesPerSecond
        self.threads = threads; self.routerWeights = routerWeights; self.spectra = spectra; self.subRuns = subRuns
        self.receipt = receipt
        self.variant = variant
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    public static func read(_ dir: String) throws -> RunReport {
        let path = dir + "/report.json"
        guard FileIO.exists(path) else { throw DataError(file: path, "no report.json: the run has not finished", fix: "finish it with `mola-train run <config> --resume`") }
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        do { return try d.decode(RunReport.self, from: try FileIO.read(path)) } catch {
            throw DataError(file: path, "report.json cannot be read: \(error)", fix: "re-run the training to rewrite it")
        }
    }

    /// An exponential moving average (weight 0.2 on each new value), as TensorBoard smooths.
    static func smoothed(_ ys: [Double]) -> [Double] {
        var out: [Double] = [], last: Double?
        for y in ys {
            let v = last.map { 0.8 * $0 + 0.2 * y } ?? y
            out.append(v)
            last = v
        }
        return out
    }

    public func write(to dir: String, metrics: [MetricsRecord]) throws {
        try FileIO.writeAtomically(String(decoding: try Self.encoder.encode(self), as: UTF8.self) + "\n", to: dir + "/report.json")
        try FileIO.writeAtomically(markdown(), to: dir + "/report.md")
        let evaluations = metrics.compactMap(\.evaluation)
        let curves = evaluations.map { e in (e.step, e.trainLoss, e.valAverage, tasks.map { e.valPerTask[$0] ?? 0 }) }
        // Training records (every log_every steps) give the curves their shape; validation
        // records are the points on them.
        let train = metrics.compactMap(\.training).map { (Double($0.step), $0.loss, $0.accuracy) }
        let valLoss = evaluations.map { (Double($0.step), $0.valLoss) }
        if !curves.isEmpty || !train.isEmpty {
            let steps = train.map(\.0)
            var loss: [Plot.Series] = train.isEmpty
                ? [.init(name: "train loss", x: curves.map { Double($0.0) }, y: curves.map(\.1))]
                : [.init(name: "train loss (smoothed)", x: steps, y: Self.smoothed(train.map(\.1))),
                   .init(name: "train loss", x: steps, y: train.map(\.1), style: .faint)]
            // The training objective sums each task's mean cross-entropy; validation loss is
            // the mean per image: the legend says so, the scales differ by up to the task count.
            loss.append(.init(name: "validation loss (per image)", x: valLoss.map(\.0), y: valLoss.map(\.1), style: .points))
            try FileIO.writeAtomically(Plot.lines(title: "Loss (training: sum over tasks of each task's mean)", xTitle: "training step",
                                                  yTitle: "cross-entropy", series: loss), to: dir + "/loss.svg")
            var accuracy: [Plot.Series] = []
            if !train.isEmpty { accuracy.append(.init(name: "train (smoothed)", x: steps, y: Self.smoothed(train.map(\.2)))) }
            let valSteps = curves.map { Double($0.0) }
            accuracy.append(.init(name: "validation average", x: valSteps, y: curves.map(\.2), style: curves.count > 1 ? .line : .points))
            for (i, t) in tasks.enumerated() { accuracy.append(.init(name: "validation \(t)", x: valSteps, y: curves.map { $0.3[i] }, style: .points)) }
            try FileIO.writeAtomically(Plot.lines(title: "Accuracy", xTitle: "training step", yTitle: "top-1 accuracy (%)", series: accuracy),
                                       to: dir + "/accuracy.svg")
        }
        let growth = evaluations.compactMap { e in e.adapterGrowth.map { (Double(e.step), $0) } }
        if let k = growth.first?.1.count, k > 0 {
            let names = k == tasks.count ? tasks.map { "adapter of \($0)" } : (0..<k).map { "adapter \($0)" }
            let series = (0..<k).map { i in Plot.Series(name: names[i], x: growth.map(\.0), y: growth.map { i < $0.1.count ? $0.1[i] : .nan }) }
            try FileIO.writeAtomically(Plot.lines(title: "Adapter growth over the adapted layers", xTitle: "training step",
                                                  yTitle: "‖ΔW‖ / ‖W‖", series: series), to: dir + "/adapter-growth.svg")
        }
        try? FileManager.default.removeItem(atPath: dir + "/confusion")
        for (t, task) in tasks.enumerated() {
            guard let c = testMetrics?[task] else { continue }
            let names = classNames?[task] ?? c.confusion.indices.map { "\($0)" }
            try FileManager.default.createDirectory(atPath: dir + "/confusion", withIntermediateDirectories: true)
            if let counts = c.labelConfusion {
                let labels = classNames?[task] ?? counts.indices.map { "\($0)" }
                let rates = counts.map { [Self.rate($0[0], of: $0[0] + $0[1]) ?? .nan, Self.rate($0[3], of: $0[2] + $0[3]) ?? .nan] }
                try FileIO.writeAtomically(Plot.heatmap(title: "\(task): each label's decisions at ½ (test)", rows: labels,
                                                        columns: ["specificity", "sensitivity"], values: rates,
                                                        scaleTitle: "share of the true state", rowTitle: "label", columnTitle: "rate"),
                                           to: dir + "/confusion/\(String(format: "%02d", t))-\(task).svg")
                continue
            }
            // Each row as a share of its class: the diagonal is the recall.
            let shares = c.confusion.map { row in row.map { Double($0) / Double(max(1, row.reduce(0, +))) } }
            try FileIO.writeAtomically(Plot.heatmap(title: "\(task): confusion matrix (test), share of each true class", rows: names, columns: names,
                                                    values: shares, scaleTitle: "share of the true class", rowTitle: "true class",
                                                    columnTitle: "predicted class"),
                                       to: dir + "/confusion/\(String(format: "%02d", t))-\(task).svg")
        }
        try FileIO.writeAtomically(Plot.bars(title: "Test accuracy per task", xTitle: "task", yTitle: "top-1 accuracy (%)", categories: tasks + ["average"],
                                             series: [.init(name: "test", values: tasks.map { test.perTask[$0] ?? 0 } + [test.average])], yMax: 100),
                                   to: dir + "/test-accuracy.svg")
        if let all = conflict?["all"], all.cosine.count == tasks.count {
            try FileIO.writeAtomically(Plot.heatmap(title: "Cosine of the tasks' shared gradients (last evaluation)", rows: tasks, columns: tasks,
                                                    values: all.cosine, signed: true, scaleTitle: "cosine"), to: dir + "/conflict.svg")
        }
        if let w = routerWeights {
            let mixer = gatesMixExperts ? "gate" : "router"
            try FileIO.writeAtomically(Plot.heatmap(title: "Mean \(mixer) weight per task (test)", rows: tasks,
                                                    columns: (0..<(w.first?.count ?? 0)).map { "\(gatesMixExperts ? "expert" : "adapter") \($0)" }, values: w,
                                                    scaleTitle: "\(mixer) weight"), to: dir + "/router-weights.svg")
        }
        if !spectra.isEmpty {
            let layers = spectra.indices.map { Double($0 + 1) }
            var series = [Plot.Series(name: "shared W", x: layers, y: spectra.map { Double($0.shared.k99) })]
            if let k = spectra.first?.adapted.count, k > 0 {
                series.append(.init(name: "mean of W+ΔW_t", x: layers,
                                    y: spectra.map { s in Double(s.adapted.map(\.k99).reduce(0, +)) / Double(max(1, s.adapted.count)) }))
            }
            try FileIO.writeAtomically(Plot.lines(title: "Components for 99% of the singular-value sum", xTitle: "adapted layer, input to output (listed in the report)",
                                                  yTitle: "K99 (components)", series: series), to: dir + "/spectra.svg")
            try? FileManager.default.removeItem(atPath: dir + "/spectra")
            for (i, s) in spectraPlots.enumerated() {
                try FileManager.default.createDirectory(atPath: dir + "/spectra", withIntermediateDirectories: true)
                try FileIO.writeAtomically(Self.spectrumPlot(s), to: dir + "/spectra/\(String(format: "%02d", i))-\(s.layer).svg")
            }
        }
        try FileIO.writeAtomically(html(config: try? String(contentsOfFile: dir + "/run.json", encoding: .utf8), dir: dir), to: dir + "/report.html")
    }

    /// `report.html`: report.md with every plot inlined, then the reproducibility receipt
    /// and the resolved config (as config keys; run.json's text for reports without them),
    /// in one file.
    func html(config: String?, dir: String) -> String {
        var receiptRows: [(String, String)] = [("seed", "\(seed)"), ("threads", "\(threads)"), ("config hash (SHA-256)", configHash), ("dataset", dataset)]
        if let r = receipt {
            receiptRows += [("dataset index.json (SHA-256)", r.datasetIndexHash), ("tool version", "mola-train \(r.toolVersion)"),
                            ("command line", r.commandLine.joined(separator: " "))]
            if let machine = r.machine { receiptRows.append(("machine", machine)) }
            if let finished = r.finished { receiptRows.append(("finished", finished)) }
        }
        var extra = "<h2>Reproducibility receipt</h2>\n" + HTML.definitions(receiptRows)
        if let settings {
            let lines = settings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            extra += "<h2>Resolved config</h2>\n<pre>" + HTML.escape(lines.joined(separator: "\n")) + "</pre>\n"
        } else if let config {
            extra += "<h2>Resolved config (run.json)</h2>\n<pre>" + HTML.escape(config) + "</pre>\n"
        }
        return HTML.page(title: "\(name) — \(method)", markdown: markdown(), image: HTML.svgFile(in: dir), extra: extra)
    }

    /// The adapted layers (their W and every W + ΔW_t), each drawn in `spectra/`.
    var spectraPlots: [LayerSpectrum] { spectra.filter { !$0.adapted.isEmpty && $0.shared.values != nil } }

    /// One layer's sorted singular values over σ₁ on a log scale — W bold, each W + ΔW_t
    /// thin — with each curve's K99 marked.
    static func spectrumPlot(_ s: LayerSpectrum) -> String {
        var series: [Plot.Series] = []
        var marks: (x: [Double], y: [Double]) = ([], [])
        for (name, summary, style) in [("W", s.shared, Plot.Style.line)] + s.adapted.enumerated().map({ ("W+ΔW_\($0.offset)", $0.element, Plot.Style.faint) }) {
            let v = (summary.values ?? []).map { log10(max($0, 1e-12)) }
            series.append(.init(name: name, x: v.indices.map { Double($0 + 1) }, y: v, style: style))
            if summary.k99 >= 1, summary.k99 <= v.count { marks.x.append(Double(summary.k99)); marks.y.append(v[summary.k99 - 1]) }
        }
        series.append(.init(name: "K99", x: marks.x, y: marks.y, style: .points))
        return Plot.lines(title: "\(s.layer) (\(s.rows)×\(s.columns)): sorted singular values", xTitle: "index i",
                          yTitle: "log10 σi / σ1", series: series)
    }

    /// Test AUC and balanced accuracy per task, then each task's recall per class and
    /// confusion matrix (table and plot).
    static func rate(_ k: Int, of n: Int) -> Double? { n > 0 ? Double(k) / Double(n) : nil }

    func clinicalMarkdown() -> String {
        guard let m = testMetrics, !m.isEmpty else { return "" }
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }
        var md = "## AUC and balanced accuracy (test)\n\n| metric | " + tasks.joined(separator: " | ") + " | Avg |\n|---|"
            + String(repeating: "---:|", count: tasks.count + 1) + "\n"
        md += "| AUC | " + tasks.map { f(m[$0]?.auc) }.joined(separator: " | ") + " | **\(f(testAUCAverage))** |\n"
        let balanced = tasks.compactMap { m[$0]?.balancedAccuracy }
        md += "| balanced accuracy (%) | " + tasks.map { m[$0].map { String(format: "%.2f", $0.balancedAccuracy) } ?? "–" }.joined(separator: " | ")
            + " | \(String(format: "%.2f", balanced.reduce(0, +) / Double(max(1, balanced.count)))) |\n\n"
        md += "AUC as MedMNIST's evaluator computes it (two classes: the second class's score; more: the mean over classes of "
        md += "each class against the rest); balanced accuracy is the mean recall over the classes present.\n\n"
        if tasks.contains(where: { m[$0]?.isMultiLabel == true }) {
            md += "A multi-label task is measured per label, as MedMNIST measures ChestMNIST: its AUC is the mean of the labels' AUCs, "
            md += "a label is predicted present above probability ½, its balanced accuracy is the mean over labels of "
            md += "(sensitivity + specificity) / 2.\n\n"
        }
        for (t, task) in tasks.enumerated() {
            guard let c = m[task] else { continue }
            if let counts = c.labelConfusion {
                let labels = classNames?[task] ?? counts.indices.map { "\($0)" }
                md += "### \(task): each label's decisions (test)\n\n| label | tn | fp | fn | tp | sensitivity (%) | specificity (%) |\n|---|---:|---:|---:|---:|---:|---:|\n"
                for (k, n) in counts.enumerated() {
                    let pct = { (v: Double?) in v.map { String(format: "%.1f", 100 * $0) } ?? "–" }
                    md += "| \(k < labels.count ? labels[k] : "\(k)") | \(n[0]) | \(n[1]) | \(n[2]) | \(n[3]) | \(pct(Self.rate(n[3], of: n[2] + n[3]))) | \(pct(Self.rate(n[0], of: n[0] + n[1]))) |\n"
                }
                md += "\n![label decisions \(task)](confusion/\(String(format: "%02d", t))-\(task).svg)\n\n"
                continue
            }
            let names = classNames?[task] ?? c.confusion.indices.map { "\($0)" }
            md += "### \(task): recall per class and confusion matrix (test)\n\n| true \\ predicted | " + names.joined(separator: " | ")
                + " | recall (%) |\n|---|" + String(repeating: "---:|", count: names.count + 1) + "\n"
            for (i, row) in c.confusion.enumerated() {
                md += "| \(i < names.count ? names[i] : "\(i)") | " + row.map { "\($0)" }.joined(separator: " | ")
                    + " | \(c.recall[i].map { String(format: "%.1f", $0) } ?? "–") |\n"
            }
            md += "\n![confusion \(task)](confusion/\(String(format: "%02d", t))-\(task).svg)\n\n"
        }
        return md
    }

    func markdown() -> String {
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var md = "# \(name) — \(method)\n\n"
        if let variant { md += "Variant: **\(variant)**.\n\n" }
        md += "Dataset `\(dataset)`, seed \(seed), \(steps) steps (\(epochs) epochs), best validation at step \(bestStep), "
        md += "\(String(format: "%.1f", trainSeconds)) s of training, \(String(format: "%.0f", trainImagesPerSecond)) images/s on \(threads) threads.\n\n"
        md += "## Top-1 accuracy (%)\n\n| split | " + tasks.joined(separator: " | ") + " | Avg |\n|---|" + String(repeating: "---:|", count: tasks.count + 1) + "\n"
        md += "| test | " + tasks.map { f(test.perTask[$0] ?? 0) }.joined(separator: " | ") + " | **\(f(test.average))** |\n"
        md += "| validation | " + tasks.map { f(validation.perTask[$0] ?? 0) }.joined(separator: " | ") + " | \(f(validation.average)) |\n\n"
        md += "Test accuracy is measured once, on the checkpoint with the best validation average.\n\n"
        md += clinicalMarkdown()
        md += "## Parameters\n\n| total | shared backbone | adapters | router / gates | heads |\n|---:|---:|---:|---:|---:|\n"
        md += "| \(parameters.total) | \(parameters.backbone) | \(parameters.adapters) | \(parameters.router) | \(parameters.heads) |\n\n"
        if let w = routerWeights {
            md += gatesMixExperts
                ? "## Mean gate weights per task (test)\n\nExperts e0… are the shared ones, then each task's own (CGC).\n\n| task | "
                    + (0..<(w.first?.count ?? 0)).map { "e\($0)" }.joined(separator: " | ") + " |\n|---|"
                : "## Mean router weights per task (test)\n\n| task | " + (0..<(w.first?.count ?? 0)).map { "a\($0)" }.joined(separator: " | ") + " |\n|---|"
            md += String(repeating: "---:|", count: w.first?.count ?? 0) + "\n"
            for (t, row) in zip(tasks, w) { md += "| \(t) | " + row.map { String(format: "%.3f", $0) }.joined(separator: " | ") + " |\n" }
            md += "\n![router weights](router-weights.svg)\n\n"
        }
        if !spectra.isEmpty {
            md += "## Spectra (K for 99% of the singular-value sum; top singular value)\n\n"
            md += "| layer | matrix | K99 of W | σ₁ of W | K99 of W+ΔW_t | σ₁ of W+ΔW_t |\n|---|---|---:|---:|---|---|\n"
            for s in spectra {
                md += "| \(s.layer) | \(s.rows)×\(s.columns) | \(s.shared.k99) | \(String(format: "%.3f", s.shared.top)) | "
                md += s.adapted.map { "\($0.k99)" }.joined(separator: ", ") + " | " + s.adapted.map { String(format: "%.3f", $0.top) }.joined(separator: ", ") + " |\n"
            }
            md += "\n![spectra](spectra.svg)\n\n"
            if !spectraPlots.isEmpty {
                md += "Singular values of each adapted layer (W and every W+ΔW_t, K99 marked):\n\n"
                md += spectraPlots.enumerated().map { "![\($1.layer)](spectra/\(String(format: "%02d", $0))-\($1.layer).svg)" }.joined(separator: " ") + "\n\n"
            }
        }
        if let conflict, !conflict.isEmpty {
            md += "## Task-gradient conflict (last evaluation; 32 training images per task)\n\n"
            md += "| shared stage | mean cosine | conflicting pairs | mean magnitude similarity |\n|---|---:|---:|---:|\n"
            for stage in conflict.keys.sorted(by: { ($0 == "all" ? 1 : 0, $0) < ($1 == "all" ? 1 : 0, $1) }) {
                let c = conflict[stage]!
                md += "| \(stage) | \(String(format: "%.3f", TaskConflict.meanOffDiagonal(c.cosine))) | \(String(format: "%.0f%%", 100 * c.conflicting)) | "
                md += String(format: "%.3f", TaskConflict.meanOffDiagonal(c.magnitudeSimilarity)) + " |\n"
            }
            md += "\nCosine between the tasks' gradients of the shared parameters (< 0: they conflict); magnitude similarity "
            md += "2|g_i||g_j|/(|g_i|²+|g_j|²).\n\n![conflict](conflict.svg)\n\n"
        }
        if let subRuns { md += "## Single-task models\n\n" + subRuns.map { "- [\($0)](\($0)/report.md)\n" }.joined() + "\n" }
        md += "![loss](loss.svg) ![accuracy](accuracy.svg) ![test accuracy](test-accuracy.svg)"
        md += (parameters.adapters > 0 && subRuns == nil ? " ![adapter growth](adapter-growth.svg)" : "") + "\n"
        return md
    }
}
