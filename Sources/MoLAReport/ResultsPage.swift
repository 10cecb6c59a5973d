import Foundation
import MoLASupport

/// A results page for the docs, which `mola-train compare --page` writes from the runs it
/// compares: how they were made (the command that made them, the data, the training
/// settings they share, the machine, the dates), the table and its figure. It holds
/// nothing but what the runs' reports say, so running that command again rewrites it.
extension Comparison {
    /// Writes the page to `path` and its figure to the folder beside it named after it
    /// (`docs/results/digit-domains.md` → `docs/results/digit-domains/`).
    public func writePage(to path: String, title: String, madeBy: String) throws {
        let page = URL(fileURLWithPath: path)
        let figures = page.deletingPathExtension().lastPathComponent
        let folder = page.deletingLastPathComponent().appendingPathComponent(figures).path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileIO.writeAtomically(testAccuracyFigure, to: folder + "/test-accuracy.svg")
        try FileIO.writeAtomically(pageMarkdown(title: title, madeBy: madeBy, figures: figures), to: path)
    }

    func pageMarkdown(title: String, madeBy: String, figures: String) -> String {
        var md = "# \(title)\n\n"
        md += "<!-- Written by `mola-train compare --page` from the runs' reports: run `\(madeBy)` again to refresh it; edits here are lost. -->\n\n"
        md += "Made by `\(madeBy)`, which rewrites this page when it runs again.\n\n"
        md += provenance.map { "- **\($0.0)**: \($0.1)\n" }.joined() + "\n"
        md += markdown + "\n![test accuracy per method](\(figures)/test-accuracy.svg)\n"
        return md
    }

    /// The training settings the page names when every run has the same value.
    static let headlineSettings = ["backbone.name", "batch_size", "epochs", "max_steps", "optimizer.name", "optimizer.lr", "optimizer.schedule",
                                   "optimizer.weight_decay"]

    /// How the runs were made, from their reports: (what, description) lines.
    var provenance: [(String, String)] {
        let rs = reports.map(\.report)
        func distinct<T: Hashable & Comparable>(_ f: (RunReport) -> T) -> [T] { Set(rs.map(f)).sorted() }
        let seeds = distinct(\.seed).map(String.init)
        var lines: [(String, String)] = []
        lines.append(("Runs", "\(rs.count) runs, \(rows.count) rows; seed\(seeds.count == 1 ? "" : "s") \(seeds.joined(separator: ", ")); "
                      + "steps per run: \(distinct(\.steps).map(String.init).joined(separator: ", ")); "
                      + "train time of all runs: \(Self.duration(rs.map(\.trainSeconds).reduce(0, +)))"))
        let hashes = distinct { String(($0.receipt?.datasetIndexHash ?? "not recorded").prefix(16)) }
        // Dataset folders as the command that made the runs named them, relative to where it ran.
        let here = FileManager.default.currentDirectoryPath + "/"
        let datasets = distinct(\.dataset).map { $0.hasPrefix(here) ? String($0.dropFirst(here.count)) : $0 }
        lines.append(("Data", datasets.map { "`\($0)`" }.joined(separator: ", ") + "; tasks " + tasks.joined(separator: ", ")
                      + "; index.json SHA-256 " + hashes.map { "`\($0)…`" }.joined(separator: ", ")))
        let shared = Self.headlineSettings.compactMap { key -> String? in
            let values = Set(rs.map { $0.settings?[key] })
            guard values.count == 1, let value = values.first ?? nil else { return nil }
            return "\(key): \(value)"
        }
        if !shared.isEmpty { lines.append(("Settings every run shares", shared.joined(separator: ", "))) }
        lines.append(("Machine", distinct { $0.receipt?.machine ?? "not recorded" }.joined(separator: "; ")
                      + "; threads " + distinct(\.threads).map(String.init).joined(separator: ", ")))
        let days = distinct { String(($0.receipt?.finished ?? "not recorded").prefix(10)) }
        lines.append(("Finished", days.count > 1 ? "\(days.first!) to \(days.last!)" : days.joined()))
        lines.append(("Tool", distinct { $0.receipt.map { "mola-train \($0.toolVersion)" } ?? "not recorded" }.joined(separator: ", ")))
        return lines
    }

    static func duration(_ seconds: Double) -> String {
        seconds < 120 ? String(format: "%.0f s", seconds) : seconds < 7200 ? String(format: "%.0f min", seconds / 60) : String(format: "%.1f h", seconds / 3600)
    }
}
