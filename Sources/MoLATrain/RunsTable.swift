import Foundation
import MoLAData
import MoLAReport
import MoLASupport

/// `mola-train runs`: one row per run folder under a directory (like `dvc exp show`): name,
/// method, data, the config values that differ between the runs, status, steps, best
/// validation and test average.
public enum RunsTable {
    public struct Row: Codable, Equatable, Sendable {
        public var name: String
        public var directory: String
        public var method: String
        public var data: String
        /// running (a process holds the run folder's lock: its pid and host), interrupted (a
        /// checkpoint, no report) or finished.
        public var status: String
        public var steps: Int
        public var bestValidation: Double?
        public var testAverage: Double?
        /// Every config value by dotted key (the table shows those that differ).
        public var params: [String: String]
    }

    /// Every run folder (holding run.json) under `root`, sorted by path; a single-task run's
    /// per-task models are part of their run, not rows of their own.
    public static func scan(_ root: String) throws -> [Row] {
        guard FileIO.isDirectory(root) else { throw DataError(file: root, "folder not found", fix: "give the folder your runs are in (default: runs)") }
        var dirs: [String] = []
        let e = FileManager.default.enumerator(atPath: root)
        while let rel = e?.nextObject() as? String {
            guard rel.hasSuffix("run.json"), !rel.split(separator: "/").contains("tasks") else { continue }
            dirs.append(root + "/" + String(rel.dropLast("run.json".count)).trimmingCharacters(in: CharacterSet(charactersIn: "/")))
        }
        return try dirs.sorted().map(row)
    }

    static func row(_ dir: String) throws -> Row {
        let d = try RunDescription.read(dir)
        let report = try? RunReport.read(dir)
        var state: TrainState?
        if let data = try? FileIO.read(dir + "/checkpoints/latest/state.json") { state = try? JSONDecoder().decode(TrainState.self, from: data) }
        let status: String
        if report != nil { status = "finished" } else if let holder = ProcessLock.holder(of: dir) { status = "running (pid \(holder.pid) on \(holder.host))" } else { status = "interrupted" }
        var params = d.config.settings
        for k in params.keys where k.hasPrefix("output") || k == "name" || k == "method" || k.hasPrefix("data.") { params[k] = nil }
        return Row(name: d.config.name, directory: dir, method: d.config.method.name,
                   data: URL(fileURLWithPath: d.config.data.manifest ?? d.config.data.dataset ?? "?").deletingPathExtension().lastPathComponent,
                   status: status, steps: report?.steps ?? state?.step ?? 0,
                   bestValidation: report?.validation.average ?? state.flatMap { $0.bestValidation >= 0 ? $0.bestValidation : nil },
                   testAverage: report?.test.average, params: params)
    }

    /// A text table: fixed columns, then the config keys whose values differ between the
    /// rows (with `onlyChanged` false, also a few keys people compare most).
    public static func render(_ rows: [Row], onlyChanged: Bool) -> String {
        let keys = Set(rows.flatMap(\.params.keys))
        var shown = keys.filter { k in Set(rows.map { $0.params[k] ?? "–" }).count > 1 }
        if !onlyChanged { shown.formUnion(["epochs", "seed", "optimizer.lr", "adapters.alpha"].filter(keys.contains)) }
        let columns = ["run", "method", "data", "status", "steps", "best val", "test avg"] + shown.sorted()
        let cells = rows.map { r in
            [r.name, r.method, r.data, r.status, "\(r.steps)", r.bestValidation.map { String(format: "%.2f", $0) } ?? "–",
             r.testAverage.map { String(format: "%.2f", $0) } ?? "–"] + shown.sorted().map { r.params[$0] ?? "–" }
        }
        let widths = columns.indices.map { c in ([columns[c]] + cells.map { $0[c] }).map(\.count).max() ?? 0 }
        func line(_ v: [String]) -> String { zip(v, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        return ([line(columns), line(widths.map { String(repeating: "-", count: $0) })] + cells.map(line)).joined(separator: "\n") + "\n"
    }
}
