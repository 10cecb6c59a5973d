import Foundation
import MoLASupport

/// `labels: table.csv` on a tree source: each file's class from a `file,label` table
/// instead of its class folder (as research volumes and DICOM exports usually come: one
/// folder of scans and a spreadsheet of findings). Files are relative to the root (or
/// absolute); the header row is `file,label` (any case), or absent and the first two
/// columns are taken; a label is a class name. Rows keep the table's order.
///
/// A multi-label task's table has a `file` column and one 0/1 column per label, named by
/// the label (`file,atelectasis,cardiomegaly,…`); a row's "folder" is then the names of its
/// present labels joined by `|` (`TreeListing.labels` turns it into the bit set).
enum TreeLabels {
    static let separator: Character = "|"

    /// The label columns of a multi-label table (nil for a `file,label` table).
    static func labelColumns(table: String) throws -> [String]? {
        let header = try rows(table).first { !$0.line.isEmpty }?.cells.map { $0.lowercased() } ?? []
        guard header.contains("file"), !header.contains("label"), header.count > 1 else { return nil }
        return try rows(table).first { !$0.line.isEmpty }!.cells.filter { $0.lowercased() != "file" }
    }

    private static func rows(_ table: String) throws -> [(line: String, cells: [String])] {
        let text: String
        do { text = try String(contentsOfFile: table, encoding: .utf8) } catch {
            throw DataError(file: table, "cannot read the labels table: \(error.localizedDescription)", fix: "check the path under 'labels'")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { raw in
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            return (line, line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            })
        }
    }

    static func listing(root: String, table: String) throws -> [(file: String, folder: String)] {
        var out: [(String, String)] = []
        var seen: [String: Int] = [:]
        var columns = (file: 0, label: 1)
        var multi: [(column: Int, name: String)]? = nil
        for (n, row) in try rows(table).enumerated() {
            let (line, cells) = row
            if line.isEmpty { continue }
            let lower = cells.map { $0.lowercased() }
            if n == 0, let f = lower.firstIndex(of: "file") {
                if let l = lower.firstIndex(of: "label") { columns = (f, l) } else {
                    columns = (f, f)
                    multi = cells.indices.filter { $0 != f }.map { ($0, cells[$0]) }
                    guard !multi!.isEmpty else {
                        throw DataError(file: table, location: "line 1", "the header names a file column but no label column",
                                        fix: "write 'file,label' (one class per file) or 'file,<label 1>,<label 2>,…' (0/1 per label)")
                    }
                }
                continue
            }
            guard cells.count > max(columns.file, columns.label, multi?.map(\.column).max() ?? 0), !cells[columns.file].isEmpty,
                  multi != nil || !cells[columns.label].isEmpty else {
                throw DataError(file: table, location: "line \(n + 1)", "expected a file and \(multi == nil ? "a label" : "a 0/1 value per label"), found '\(line)'",
                                fix: multi == nil ? "write one 'file,label' row per file (a header row 'file,label' is optional)"
                                    : "write one 0 or 1 under every label of the header, for every file")
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
            if let multi {
                var present: [String] = []
                for (column, label) in multi {
                    guard ["0", "1"].contains(cells[column]) else {
                        throw DataError(file: table, location: "line \(n + 1)", "'\(cells[column])' under \(label) is not 0 or 1",
                                        fix: "mark each label present (1) or absent (0)")
                    }
                    if cells[column] == "1" { present.append(label) }
                }
                out.append((path, present.joined(separator: String(separator))))
            } else {
                out.append((path, cells[columns.label]))
            }
        }
        guard !out.isEmpty else { throw DataError(file: table, "the labels table lists no files", fix: "write one 'file,label' row per file") }
        return out
    }
}
