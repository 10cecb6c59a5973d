import Foundation
import MoLASupport

/// `labels: table.csv` on a tree source: each file's class from a `file,label` table
/// instead of its class folder (as research volumes and DICOM exports usually come: one
/// folder of scans and a spreadsheet of findings). Files are relative to the root (or
/// absolute); the header row is `file,label` (any case), or absent and the first two
/// columns are taken; a label is a class name. Rows keep the table's order.
enum TreeLabels {
    static func listing(root: String, table: String) throws -> [(file: String, folder: String)] {
        let text: String
        do { text = try String(contentsOfFile: table, encoding: .utf8) } catch {
            throw DataError(file: table, "cannot read the labels table: \(error.localizedDescription)", fix: "check the path under 'labels'")
        }
        var rows: [(String, String)] = []
        var seen: [String: Int] = [:]
        var columns = (file: 0, label: 1)
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            let lower = cells.map { $0.lowercased() }
            if n == 0, let f = lower.firstIndex(of: "file"), let l = lower.firstIndex(of: "label") {
                columns = (f, l)
                continue
            }
            guard cells.count > max(columns.file, columns.label), !cells[columns.file].isEmpty, !cells[columns.label].isEmpty else {
                throw DataError(file: table, location: "line \(n + 1)", "expected a file and a label, found '\(line)'",
                                fix: "write one 'file,label' row per file (a header row 'file,label' is optional)")
            }
            let name = cells[columns.file]
            let path = name.hasPrefix("/") ? name : root + "/" + name
            guard FileIO.exists(path) else {
                throw DataError(file: table, location: "line \(n + 1)", "file not found: \(path)", fix: "file paths are relative to the source's root")
            }
            if let first = seen[path] {
                throw DataError(file: table, location: "line \(n + 1)", "\(name) is listed again (first on line \(first))",
                                fix: "give each file one label")
            }
            seen[path] = n + 1
            rows.append((path, cells[columns.label]))
        }
        guard !rows.isEmpty else { throw DataError(file: table, "the labels table lists no files", fix: "write one 'file,label' row per file") }
        return rows
    }
}
