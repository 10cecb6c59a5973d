import Foundation

/// Minimal SVG charts for reports: readable in any browser, no plotting dependency.
enum SVG {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    static let width = 640.0, height = 360.0, left = 60.0, right = 150.0, top = 36.0, bottom = 48.0

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func frame(_ title: String, _ body: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="20" text-anchor="middle" font-size="14">\(escape(title))</text>
        \(body)</svg>

        """
    }

    static func axes(yMin: Double, yMax: Double, xLabel: String) -> String {
        let plotH = height - top - bottom
        var s = "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"black\"/>"
        s += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"black\"/>"
        for i in 0...4 {
            let v = yMin + (yMax - yMin) * Double(i) / 4, y = height - bottom - plotH * Double(i) / 4
            s += "<text x=\"\(left - 4)\" y=\"\(y + 4)\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>"
            s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - right)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
        }
        s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 12)\" text-anchor=\"middle\">\(escape(String(xLabel.prefix(90))))</text>"
        return s
    }

    enum Style { case line, faint, points }

    /// Series with their own x values: `.line` bold, `.faint` thin and light (raw values
    /// under their smoothed line), `.points` dots (sparse measurements such as validation).
    static func plot(title: String, xLabel: String, series: [(name: String, x: [Double], y: [Double], style: Style)]) -> String {
        let all = series.flatMap(\.y).filter(\.isFinite), xs = series.flatMap(\.x)
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if hi - lo < 1e-9 { lo -= 1; hi += 1 }
        let x0 = xs.min() ?? 0, x1 = max(xs.max() ?? 1, x0 + 1)
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (width - left - right) }
        func py(_ v: Double) -> Double { height - bottom - (v - lo) / (hi - lo) * (height - top - bottom) }
        var body = axes(yMin: lo, yMax: hi, xLabel: xLabel)
        body += "<text x=\"\(left)\" y=\"\(height - bottom + 14)\">\(String(format: "%g", x0))</text>"
        body += "<text x=\"\(width - right)\" y=\"\(height - bottom + 14)\" text-anchor=\"end\">\(String(format: "%g", x1))</text>"
        var legend = 0
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = zip(s.x, s.y).filter { $0.1.isFinite }
            switch s.style {
            case .line, .faint:
                let path = pts.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
                let (w, opacity) = s.style == .line ? (2.0, 1.0) : (1.0, 0.35)
                body += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(w)\" stroke-opacity=\"\(opacity)\" points=\"\(path)\"/>"
                if pts.count == 1 { body += "<circle cx=\"\(px(pts[0].0))\" cy=\"\(py(pts[0].1))\" r=\"3\" fill=\"\(color)\"/>" }
            case .points:
                for p in pts { body += "<circle cx=\"\(px(p.0))\" cy=\"\(py(p.1))\" r=\"3.5\" fill=\"\(color)\"/>" }
            }
            body += "<text x=\"\(width - right + 8)\" y=\"\(top + 14 * Double(legend) + 10)\" fill=\"\(color)\">\(escape(s.name))</text>"
            legend += 1
        }
        return frame(title, body)
    }

    /// Lines over one shared x.
    static func lines(title: String, x: [Double], series: [(String, [Double])], xLabel: String) -> String {
        plot(title: title, xLabel: xLabel, series: series.map { ($0.0, x, $0.1, .line) })
    }

    static func bars(title: String, labels: [String], values: [Double]) -> String {
        let hi = max(100, values.max() ?? 1)
        var body = axes(yMin: 0, yMax: hi, xLabel: "")
        let slot = (width - left - right) / Double(max(1, labels.count))
        for (i, (l, v)) in zip(labels, values).enumerated() {
            let h = v / hi * (height - top - bottom), x = left + slot * Double(i) + slot * 0.15
            body += "<rect x=\"\(x)\" y=\"\(height - bottom - h)\" width=\"\(slot * 0.7)\" height=\"\(h)\" fill=\"\(palette[i % palette.count])\"/>"
            body += "<text x=\"\(x + slot * 0.35)\" y=\"\(height - bottom - h - 4)\" text-anchor=\"middle\">\(String(format: "%.1f", v))</text>"
            body += "<text x=\"\(x + slot * 0.35)\" y=\"\(height - bottom + 14)\" text-anchor=\"middle\">\(escape(l))</text>"
        }
        return frame(title, body)
    }

    /// Bars grouped by label (tasks), one colour per series (method), each with its error
    /// bar (± std; none when nil).
    static func groupedBars(title: String, groups: [String], series: [(name: String, values: [Double], errors: [Double?])]) -> String {
        let hi = max(100, series.flatMap { s in zip(s.values, s.errors).map { $0 + ($1 ?? 0) } }.max() ?? 1)
        var body = axes(yMin: 0, yMax: hi, xLabel: "")
        let slot = (width - left - right) / Double(max(1, groups.count)), bar = slot * 0.8 / Double(max(1, series.count))
        func py(_ v: Double) -> Double { height - bottom - v / hi * (height - top - bottom) }
        for (g, label) in groups.enumerated() {
            body += "<text x=\"\(left + slot * (Double(g) + 0.5))\" y=\"\(height - bottom + 14)\" text-anchor=\"middle\">\(escape(label))</text>"
            for (i, s) in series.enumerated() where g < s.values.count {
                let x = left + slot * Double(g) + slot * 0.1 + bar * Double(i), v = s.values[g]
                body += "<rect x=\"\(x)\" y=\"\(py(v))\" width=\"\(bar * 0.9)\" height=\"\(height - bottom - py(v))\" fill=\"\(palette[i % palette.count])\"/>"
                if g < s.errors.count, let e = s.errors[g] {
                    let cx = x + bar * 0.45
                    body += "<path d=\"M\(cx),\(py(v - e)) V\(py(v + e)) M\(cx - 3),\(py(v - e)) h6 M\(cx - 3),\(py(v + e)) h6\" stroke=\"black\" fill=\"none\"/>"
                }
            }
        }
        for (i, s) in series.enumerated() {
            body += "<text x=\"\(width - right + 8)\" y=\"\(top + 14 * Double(i) + 10)\" fill=\"\(palette[i % palette.count])\">\(escape(s.name))</text>"
        }
        return frame(title, body)
    }

    /// `signed`: values in [-1, 1], red below 0 and blue above (cosines); else shades of blue up to the largest.
    static func heatmap(title: String, rows: [String], columns: [String], values: [[Double]], signed: Bool = false) -> String {
        let cellW = (width - left - 40) / Double(max(1, columns.count)), cellH = (height - top - bottom) / Double(max(1, rows.count))
        let hi = max(values.flatMap { $0 }.max() ?? 1, 1e-9)
        var body = ""
        for (r, row) in values.enumerated() {
            body += "<text x=\"\(left - 4)\" y=\"\(top + cellH * (Double(r) + 0.5) + 4)\" text-anchor=\"end\">\(escape(rows[r]))</text>"
            for (c, v) in row.enumerated() {
                let shade = Int(255 - 200 * min(1, abs(signed ? v : v / hi)))
                let fill = signed && v < 0 ? "rgb(255,\(shade),\(shade))" : "rgb(\(shade),\(shade),255)"
                body += "<rect x=\"\(left + cellW * Double(c))\" y=\"\(top + cellH * Double(r))\" width=\"\(cellW)\" height=\"\(cellH)\" fill=\"\(fill)\" stroke=\"white\"/>"
                body += "<text x=\"\(left + cellW * (Double(c) + 0.5))\" y=\"\(top + cellH * (Double(r) + 0.5) + 4)\" text-anchor=\"middle\">\(String(format: "%.2f", v))</text>"
            }
        }
        for (c, name) in columns.enumerated() {
            body += "<text x=\"\(left + cellW * (Double(c) + 0.5))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(escape(name))</text>"
        }
        return frame(title, body)
    }
}
