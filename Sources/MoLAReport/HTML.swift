import Foundation

/// Self-contained HTML pages from the Markdown reports: one file that opens anywhere, with
/// no network, no JavaScript and every plot inlined as SVG. The Markdown is the source of
/// truth, so `report.html` shows exactly the tables of `report.md`.
public enum HTML {
    static func escape(_ s: String) -> String { Plot.escape(s).replacingOccurrences(of: "\"", with: "&quot;") }

    /// A page: `markdown` converted, images resolved by `image` (an SVG file's text, inlined),
    /// then the extra sections (already HTML).
    static func page(title: String, markdown: String, image: (String) -> String?, extra: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>
        body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; }
        th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        figure { display: inline-block; margin: 0.5em; width: 520px; } svg { max-width: 100%; height: auto; }
        pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
        code { background: #f3f3f3; padding: 0 3px; } dt { font-weight: bold; } dd { margin: 0 0 0.4em 1.5em; font-family: monospace; }
        </style></head>
        <body>
        \(body(markdown, image: image))\(extra)
        </body></html>

        """
    }

    /// The Markdown our reports use: headings, paragraphs, pipe tables, bullet lists and
    /// inline bold, code, links and images.
    public static func body(_ markdown: String, image: (String) -> String?) -> String {
        var out = "", table: [String] = [], list: [String] = [], paragraph: [String] = []
        func flush() {
            if !paragraph.isEmpty { out += "<p>" + inline(paragraph.joined(separator: " "), image: image) + "</p>\n"; paragraph = [] }
            if !list.isEmpty { out += "<ul>" + list.map { "<li>" + inline($0, image: image) + "</li>" }.joined() + "</ul>\n"; list = [] }
            if !table.isEmpty { out += tableHTML(table, image: image); table = [] }
        }
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("|") { if table.isEmpty { flush() }; table.append(line); continue }
            if !table.isEmpty { flush() }
            if line.isEmpty { flush() }
            else if let level = line.prefix(while: { $0 == "#" }).count as Int?, level > 0, level <= 6, line.dropFirst(level).hasPrefix(" ") {
                flush()
                out += "<h\(level)>" + inline(String(line.dropFirst(level + 1)), image: image) + "</h\(level)>\n"
            } else if line.hasPrefix("- ") { if !paragraph.isEmpty { flush() }; list.append(String(line.dropFirst(2))) }
            else { paragraph.append(line) }
        }
        flush()
        return out
    }

    static func cells(_ row: String) -> [String] {
        var r = Substring(row)
        if r.hasPrefix("|") { r = r.dropFirst() }
        if r.hasSuffix("|") { r = r.dropLast() }
        return r.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    static func tableHTML(_ rows: [String], image: (String) -> String?) -> String {
        guard rows.count >= 2 else { return "<p>" + rows.map { inline($0, image: image) }.joined(separator: "<br>") + "</p>\n" }
        let align = cells(rows[1]).map { $0.hasSuffix(":") }
        var html = "<table>\n<tr>" + cells(rows[0]).map { "<th>" + inline($0, image: image) + "</th>" }.joined() + "</tr>\n"
        for row in rows.dropFirst(2) {
            html += "<tr>" + cells(row).enumerated().map { i, c in
                (i < align.count && align[i] ? "<td class=\"num\">" : "<td>") + inline(c, image: image) + "</td>"
            }.joined() + "</tr>\n"
        }
        return html + "</table>\n"
    }

    /// Inline spans. An image whose file `image` can read is inlined (an SVG document is
    /// valid HTML5); one it cannot is shown as its alt text, so the page never refers to a
    /// file beside it.
    static func inline(_ text: String, image: (String) -> String?) -> String {
        var out = "", rest = Substring(text)
        while let c = rest.first {
            if c == "!", rest.dropFirst().first == "[", let (alt, src, after) = link(rest.dropFirst()) {
                if let svg = image(src) { out += "<figure title=\"\(escape(alt))\">" + svg.trimmingCharacters(in: .whitespacesAndNewlines) + "</figure>" }
                else { out += "<em>[\(escape(alt))]</em>" }
                rest = after
            } else if c == "[", let (label, href, after) = link(rest) {
                // Links point at sibling reports: keep the .html twin so pages link to pages.
                let target = href.hasSuffix(".md") ? String(href.dropLast(3)) + ".html" : href
                out += "<a href=\"\(escape(target))\">\(escape(label))</a>"
                rest = after
            } else if rest.hasPrefix("**"), let end = rest.dropFirst(2).range(of: "**") {
                out += "<strong>" + escape(String(rest[rest.index(rest.startIndex, offsetBy: 2)..<end.lowerBound])) + "</strong>"
                rest = rest[end.upperBound...]
            } else if c == "`", let end = rest.dropFirst().firstIndex(of: "`") {
                out += "<code>" + escape(String(rest[rest.index(after: rest.startIndex)..<end])) + "</code>"
                rest = rest[rest.index(after: end)...]
            } else {
                out += escape(String(c))
                rest = rest.dropFirst()
            }
        }
        return out
    }

    /// `[label](target)` at the start of `s`: the label, the target and what follows.
    static func link(_ s: Substring) -> (String, String, Substring)? {
        guard s.first == "[", let close = s.firstIndex(of: "]"), s[s.index(after: close)...].first == "(",
              let end = s[close...].firstIndex(of: ")") else { return nil }
        let label = String(s[s.index(after: s.startIndex)..<close])
        let target = String(s[s.index(close, offsetBy: 2)..<end])
        return (label, target, s[s.index(after: end)...])
    }

    /// A definition list of name → value pairs (the reproducibility receipt).
    static func definitions(_ pairs: [(String, String)]) -> String {
        "<dl>" + pairs.map { "<dt>\(escape($0.0))</dt><dd>\(escape($0.1))</dd>" }.joined() + "</dl>\n"
    }

    /// Reads an SVG written beside the page, or nil (a missing plot becomes alt text).
    static func svgFile(in dir: String) -> (String) -> String? {
        { name in
            guard name.hasSuffix(".svg"), !name.contains(".."), let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8) else { return nil }
            return text
        }
    }
}
