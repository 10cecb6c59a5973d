import Foundation

/// The reports' figures, drawn as SVG the way matplotlib draws them: a title; titled axes
/// with tick labels on both; a legend below the plot that wraps; bars with their categories
/// named under them and error bars; heatmaps that fit, with a colour scale; a series of one
/// point drawn as a marked point with its value. Every figure is laid out from estimated
/// text widths (rounded up from DejaVu Sans, the widest common sans-serif), so each label
/// has room inside the figure.
///
/// Each root `<svg>` carries `class="figure" data-kind="…"`, axis titles
/// `class="axis-title"` and a heatmap's scale `class="colour-scale"`: the report test
/// checks them in a browser.
enum Plot {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    static let width = 640.0
    static let margin = 12.0
    static let tickSize = 11.0, labelSize = 12.0, titleSize = 14.0

    enum Style { case line, faint, points }

    /// One line or set of points, with its own x values.
    struct Series {
        var name: String
        var x: [Double]
        var y: [Double]
        var style: Style = .line
    }

    /// One set of bars of a grouped bar chart: a value (and ± error, if any) per category.
    struct BarSeries {
        var name: String
        var values: [Double]
        var errors: [Double?] = []
    }

    // MARK: - Figures

    /// Lines (or points) against a numeric x.
    static func lines(title: String, xTitle: String, yTitle: String, series: [Series]) -> String {
        let finite = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite } }
        var (x0, x1) = (finite.map(\.0).min() ?? 0, finite.map(\.0).max() ?? 1)
        if x1 - x0 < 1e-12 { (x0, x1) = (x0 - 1, x1 + 1) }
        let yAxis = Axis(data: finite.map(\.1))
        let xTicks = Axis.niceTicks(x0, x1).filter { $0 >= x0 - 1e-9 && $0 <= x1 + 1e-9 }
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        var f = Frame(title: title, kind: "lines", yTitle: yTitle, yTicks: yAxis.ticks, yLabels: yAxis.labels, xTitle: xTitle,
                      legend: series.map { .init(name: $0.name, style: $0.style) }, xTickRotation: false,
                      xTickLabels: xTicks.map { Axis.label($0, step: xStep) })
        let (left, right, top, bottom) = (f.plotLeft, f.plotRight, f.plotTop, f.plotBottom)
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - yAxis.lo) / (yAxis.hi - yAxis.lo) * (bottom - top) }
        f.drawYAxis(py)
        f.drawXTicks(xTicks.map(px))
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }
            if pts.count == 1 {  // one measurement: a marked point that says its value
                let (x, y) = (px(pts[0].0), py(pts[0].1))
                f.body += "<circle cx=\"\(r(x))\" cy=\"\(r(y))\" r=\"4\" fill=\"\(color)\"/>"
                let value = Axis.value(pts[0].1), w = textWidth(value, tickSize)
                let tx = min(max(x + 6, left + 2), right - w - 2)
                f.body += text(value, x: tx, y: y > top + 16 ? y - 6 : y + 14, size: tickSize, fill: color)
                continue
            }
            switch s.style {
            case .line, .faint:
                let path = pts.map { "\(r(px($0.0))),\(r(py($0.1)))" }.joined(separator: " ")
                let (w, opacity) = s.style == .line ? (2.0, 1.0) : (1.0, 0.35)
                f.body += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(w)\" stroke-opacity=\"\(opacity)\" points=\"\(path)\"/>"
            case .points:
                for p in pts { f.body += "<circle cx=\"\(r(px(p.0)))\" cy=\"\(r(py(p.1)))\" r=\"3.5\" fill=\"\(color)\"/>" }
            }
        }
        return f.finish()
    }

    /// Bars in groups (one group per category, one colour per series), each with its error
    /// bar when given; one series draws plain bars with their values on top.
    static func bars(title: String, xTitle: String, yTitle: String, categories: [String], series: [BarSeries], yMax: Double? = nil) -> String {
        let tops = series.flatMap { s in s.values.enumerated().map { $0.element + ((s.errors.count > $0.offset ? s.errors[$0.offset] : nil) ?? 0) } }
        let yAxis = Axis(data: [0] + tops + (yMax.map { [$0] } ?? []), fromZero: true, upTo: yMax)
        let slotGuess = (width - 2 * margin - 60) / Double(max(1, categories.count))
        let rotate = categories.contains { textWidth($0, tickSize) > slotGuess - 4 }
        var f = Frame(title: title, kind: "bars", yTitle: yTitle, yTicks: yAxis.ticks, yLabels: yAxis.labels, xTitle: xTitle,
                      legend: series.count > 1 ? series.map { .init(name: $0.name, style: .bar) } : [],
                      xTickRotation: rotate, xTickLabels: categories)
        let (left, right, top, bottom) = (f.plotLeft, f.plotRight, f.plotTop, f.plotBottom)
        func py(_ v: Double) -> Double { bottom - (v - yAxis.lo) / (yAxis.hi - yAxis.lo) * (bottom - top) }
        f.drawYAxis(py)
        let slot = (right - left) / Double(max(1, categories.count)), bar = slot * 0.8 / Double(max(1, series.count))
        f.drawXTicks(categories.indices.map { left + slot * (Double($0) + 0.5) }, marks: false)
        for (c, _) in categories.enumerated() {
            for (i, s) in series.enumerated() where c < s.values.count && s.values[c].isFinite {
                let x = left + slot * Double(c) + slot * 0.1 + bar * Double(i), v = s.values[c]
                let color = series.count > 1 ? palette[i % palette.count] : palette[c % palette.count]
                f.body += "<rect x=\"\(r(x))\" y=\"\(r(py(v)))\" width=\"\(r(bar * 0.9))\" height=\"\(r(max(0, bottom - py(v))))\" fill=\"\(color)\"/>"
                let e = c < s.errors.count ? s.errors[c] : nil
                let cx = x + bar * 0.45
                if let e, e > 0 {
                    f.body += "<path d=\"M\(r(cx)),\(r(py(v - e))) V\(r(py(v + e))) M\(r(cx - 3)),\(r(py(v - e))) h6 M\(r(cx - 3)),\(r(py(v + e))) h6\" stroke=\"black\" fill=\"none\"/>"
                }
                if series.count == 1 {
                    let label = String(format: "%.1f", v)
                    f.body += text(label, x: cx, y: max(top + 10, py(v + (e ?? 0)) - 4), size: tickSize, anchor: "middle")
                }
            }
        }
        return f.finish()
    }

    /// A matrix of values, one cell per (row, column), with a colour scale. `signed`: values
    /// in [-1, 1], red below 0 and blue above (cosines); else white to blue up to the largest.
    static func heatmap(title: String, rows: [String], columns: [String], values: [[Double]], signed: Bool = false,
                        scaleTitle: String) -> String {
        let hi = signed ? 1 : max(values.flatMap { $0 }.filter(\.isFinite).max() ?? 1, 1e-9)
        let lo = signed ? -1.0 : 0
        let rowLabel = (rows.map { textWidth($0, tickSize) }.max() ?? 0) + 8
        let scaleLabels = (signed ? [-1, 0, 1] : [0, hi / 2, hi]).map { $0 == 0 ? "0" : Axis.value($0) }
        let scaleLabelWidth = scaleLabels.map { textWidth($0, tickSize) }.max() ?? 0
        let scaleWidth = 16 + 14 + 6 + scaleLabelWidth + 6 + labelSize + 4
        let available = width - 2 * margin - rowLabel - scaleWidth
        let cell = min(64, available / Double(max(1, columns.count)))
        let cellH = min(40, max(18, cell * 0.6))
        let rotate = columns.contains { textWidth($0, tickSize) > cell - 4 }
        let columnLabels = rotate ? (columns.map { textWidth($0, tickSize) }.max() ?? 0) * 0.71 + tickSize + 6 : tickSize + 8
        let titleLines = wrap(title, width: width - 2 * margin, size: titleSize)
        let top = margin + Double(titleLines.count) * (titleSize + 4) + 6
        let left = margin + rowLabel
        let gridH = cellH * Double(max(1, rows.count))
        let height = top + gridH + columnLabels + margin
        // As wide as its content and title: a small matrix is not lost in white space.
        let figureWidth = min(width, max(left + cell * Double(columns.count) + scaleWidth + margin,
                                         (titleLines.map { textWidth($0, titleSize) }.max() ?? 0) + 2 * margin))
        var body = titleText(titleLines, centre: figureWidth / 2)
        for (ri, row) in values.enumerated() where ri < rows.count {
            body += text(rows[ri], x: left - 6, y: top + cellH * (Double(ri) + 0.5) + 4, size: tickSize, anchor: "end")
            for (ci, v) in row.enumerated() where ci < columns.count {
                let t = v.isFinite ? min(1, abs(v) / (signed ? 1 : hi)) : 0
                let fill = colour(t, negative: signed && v < 0)
                body += "<rect x=\"\(r(left + cell * Double(ci)))\" y=\"\(r(top + cellH * Double(ri)))\" width=\"\(r(cell))\" height=\"\(r(cellH))\" fill=\"\(fill)\" stroke=\"white\"/>"
                let label = v.isFinite ? String(format: "%.2f", v) : "–"
                if textWidth(label, tickSize) < cell - 4 {
                    body += text(label, x: left + cell * (Double(ci) + 0.5), y: top + cellH * (Double(ri) + 0.5) + 4, size: tickSize,
                                 anchor: "middle", fill: t > 0.6 ? "white" : "black")
                }
            }
        }
        for (ci, name) in columns.enumerated() {
            let x = left + cell * (Double(ci) + 0.5), y = top + gridH + tickSize + 4
            body += rotate ? text(name, x: x + 3, y: y, size: tickSize, anchor: "end", rotate: -45)
                : text(name, x: x, y: y, size: tickSize, anchor: "middle")
        }
        // The colour scale: a bar from lo to hi with its ticks and title.
        let sx = left + cell * Double(columns.count) + 16, sh = max(gridH, 60)
        var scale = "<g class=\"colour-scale\">"
        let steps = 20
        for k in 0..<steps {
            let v0 = hi - (hi - lo) * Double(k) / Double(steps), v1 = hi - (hi - lo) * Double(k + 1) / Double(steps)
            let mid = (v0 + v1) / 2
            let fill = colour(min(1, abs(mid) / (signed ? 1 : hi)), negative: signed && mid < 0)
            scale += "<rect x=\"\(r(sx))\" y=\"\(r(top + sh * Double(k) / Double(steps)))\" width=\"14\" height=\"\(r(sh / Double(steps) + 0.5))\" fill=\"\(fill)\"/>"
        }
        scale += "<rect x=\"\(r(sx))\" y=\"\(r(top))\" width=\"14\" height=\"\(r(sh))\" fill=\"none\" stroke=\"#444\"/>"
        for (v, label) in zip(signed ? [-1, 0, 1] : [0, hi / 2, hi], scaleLabels) {
            let y = top + (hi - v) / (hi - lo) * sh
            scale += "<line x1=\"\(r(sx + 14))\" y1=\"\(r(y))\" x2=\"\(r(sx + 18))\" y2=\"\(r(y))\" stroke=\"#444\"/>"
            scale += text(label, x: sx + 20, y: y + 4, size: tickSize)
        }
        let titleX = sx + 20 + scaleLabelWidth + 6 + labelSize - 2
        scale += text(scaleTitle, x: titleX, y: top + sh / 2, size: labelSize, anchor: "middle", rotate: -90, cls: "axis-title")
        scale += "</g>"
        body += scale
        return svg(kind: "heatmap", width: figureWidth, height: max(height, top + sh + margin), body: body)
    }


    // MARK: - Layout

    struct LegendItem {
        enum Mark { case line, faint, points, bar }
        var name: String
        var mark: Mark
        init(name: String, style: Style) { self.name = name; mark = style == .line ? .line : style == .faint ? .faint : .points }
        init(name: String, style: Mark) { self.name = name; mark = style }
    }

    /// A figure with one plot area: title, y axis, x tick labels, x title, legend below.
    struct Frame {
        let title: [String]
        let kind: String
        let yTitle: String, xTitle: String?
        let yLabels: [String], yTicks: [Double]
        let xTickLabels: [String], xTickRotation: Bool
        let legend: [LegendItem], legendRows: [[Int]]
        let plotLeft: Double, plotRight: Double, plotTop: Double, plotBottom: Double
        let height: Double
        var body = ""

        init(title: String, kind: String, yTitle: String, yTicks: [Double], yLabels: [String], xTitle: String?, legend: [LegendItem],
             xTickRotation: Bool, xTickLabels: [String]) {
            self.title = wrap(title, width: width - 2 * margin, size: titleSize)
            self.kind = kind
            self.yTitle = yTitle
            self.xTitle = xTitle
            self.yTicks = yTicks
            self.yLabels = yLabels
            self.xTickLabels = xTickLabels
            self.xTickRotation = xTickRotation
            self.legend = legend
            let yLabelWidth = yLabels.map { textWidth($0, tickSize) }.max() ?? 0
            plotLeft = margin + labelSize + 8 + yLabelWidth + 6
            let lastLabel = xTickRotation ? 0 : (xTickLabels.last.map { textWidth($0, tickSize) / 2 } ?? 0)
            plotRight = width - margin - max(8, lastLabel)
            plotTop = margin + Double(self.title.count) * (titleSize + 4) + 10
            plotBottom = plotTop + 230
            let tickBand = xTickRotation ? (xTickLabels.map { textWidth($0, tickSize) }.max() ?? 0) * 0.5 + tickSize + 10 : tickSize + 8
            let xTitleBand = xTitle == nil ? 0 : labelSize + 8
            // Legend rows: items side by side, wrapped to the figure's width.
            var rows: [[Int]] = [], current: [Int] = [], used = 0.0
            let rowWidth = width - 2 * margin
            for (i, item) in legend.enumerated() {
                let w = min(rowWidth, 22 + textWidth(item.name, tickSize) + 16)
                if used + w > rowWidth && !current.isEmpty { rows.append(current); current = []; used = 0 }
                current.append(i)
                used += w
            }
            if !current.isEmpty { rows.append(current) }
            legendRows = rows
            height = plotBottom + tickBand + xTitleBand + (rows.isEmpty ? 0 : 8 + Double(rows.count) * 16) + margin
        }

        /// Grid lines, tick labels and the title of the y axis.
        mutating func drawYAxis(_ py: (Double) -> Double) {
            for (v, label) in zip(yTicks, yLabels) {
                let y = py(v)
                body += "<line x1=\"\(r(plotLeft))\" y1=\"\(r(y))\" x2=\"\(r(plotRight))\" y2=\"\(r(y))\" stroke=\"#e0e0e0\"/>"
                body += "<line x1=\"\(r(plotLeft - 4))\" y1=\"\(r(y))\" x2=\"\(r(plotLeft))\" y2=\"\(r(y))\" stroke=\"black\"/>"
                body += text(label, x: plotLeft - 6, y: y + 4, size: tickSize, anchor: "end")
            }
            body += "<line x1=\"\(r(plotLeft))\" y1=\"\(r(plotTop))\" x2=\"\(r(plotLeft))\" y2=\"\(r(plotBottom))\" stroke=\"black\"/>"
            body += "<line x1=\"\(r(plotLeft))\" y1=\"\(r(plotBottom))\" x2=\"\(r(plotRight))\" y2=\"\(r(plotBottom))\" stroke=\"black\"/>"
            body += text(yTitle, x: margin + labelSize, y: (plotTop + plotBottom) / 2, size: labelSize, anchor: "middle", rotate: -90, cls: "axis-title")
        }

        /// The x tick labels at `positions` (with tick marks unless bars) and the x title.
        mutating func drawXTicks(_ positions: [Double], marks: Bool = true) {
            for (x, label) in zip(positions, xTickLabels) {
                if marks { body += "<line x1=\"\(r(x))\" y1=\"\(r(plotBottom))\" x2=\"\(r(x))\" y2=\"\(r(plotBottom + 4))\" stroke=\"black\"/>" }
                let y = plotBottom + tickSize + 5
                body += xTickRotation ? text(label, x: x + 3, y: y, size: tickSize, anchor: "end", rotate: -30)
                    : text(label, x: x, y: y, size: tickSize, anchor: "middle")
            }
            if let xTitle {
                let tickBand = xTickRotation ? (xTickLabels.map { textWidth($0, tickSize) }.max() ?? 0) * 0.5 + tickSize + 10 : tickSize + 8
                body += text(xTitle, x: (plotLeft + plotRight) / 2, y: plotBottom + tickBand + labelSize + 2, size: labelSize, anchor: "middle", cls: "axis-title")
            }
        }

        func finish() -> String {
            var s = titleText(title) + body
            var y = height - margin - Double(legendRows.count) * 16 + 11
            for row in legendRows {
                var x = margin
                for i in row {
                    let item = legend[i], color = palette[i % palette.count]
                    switch item.mark {
                    case .line: s += "<line x1=\"\(r(x))\" y1=\"\(r(y - 4))\" x2=\"\(r(x + 18))\" y2=\"\(r(y - 4))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                    case .faint: s += "<line x1=\"\(r(x))\" y1=\"\(r(y - 4))\" x2=\"\(r(x + 18))\" y2=\"\(r(y - 4))\" stroke=\"\(color)\" stroke-opacity=\"0.35\"/>"
                    case .points: s += "<circle cx=\"\(r(x + 9))\" cy=\"\(r(y - 4))\" r=\"3.5\" fill=\"\(color)\"/>"
                    case .bar: s += "<rect x=\"\(r(x + 3))\" y=\"\(r(y - 10))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
                    }
                    let room = width - margin - (x + 22)
                    let name = fit(item.name, width: room, size: tickSize)
                    s += text(name, x: x + 22, y: y, size: tickSize)
                    x += 22 + textWidth(name, tickSize) + 16
                }
                y += 16
            }
            return svg(kind: kind, width: width, height: height, body: s)
        }
    }

    /// A numeric axis: ticks at 1, 2 or 5 × 10^k covering the data.
    struct Axis {
        let lo: Double, hi: Double, ticks: [Double]

        init(data: [Double], fromZero: Bool = false, upTo: Double? = nil) {
            var lo = data.filter(\.isFinite).min() ?? 0, hi = data.filter(\.isFinite).max() ?? 1
            if fromZero { lo = min(0, lo) }
            if hi - lo < 1e-12 { (lo, hi) = (lo - 1, hi + 1) }
            let step = Self.step(lo, hi)
            var a = (lo / step).rounded(.down) * step, b = (hi / step).rounded(.up) * step
            if let upTo, hi <= upTo, upTo - hi < 3 * step { b = upTo }
            if fromZero { a = min(a, 0) }
            self.lo = a
            self.hi = b
            ticks = stride(from: a, through: b + step * 1e-6, by: step).map { abs($0) < step * 1e-9 ? 0 : $0 }
        }

        static func step(_ lo: Double, _ hi: Double, target: Double = 5) -> Double {
            let raw = (hi - lo) / target, p = pow(10, (log10(raw)).rounded(.down)), m = raw / p
            return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p
        }

        static func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
            let s = step(lo, hi)
            return stride(from: (lo / s).rounded(.up) * s, through: hi + s * 1e-6, by: s).map { abs($0) < s * 1e-9 ? 0 : $0 }
        }

        /// A tick label with as many decimals as the tick step needs (0.0045, 0.005, …).
        static func label(_ v: Double, step: Double) -> String {
            if v == 0 { return "0" }
            if abs(v) >= 1e6 { return String(format: "%.3g", v) }
            let decimals = max(0, Int(-(log10(step) + 1e-9).rounded(.down)))
            return String(format: "%.\(decimals)f", v)
        }

        var labels: [String] { ticks.map { Self.label($0, step: ticks.count > 1 ? ticks[1] - ticks[0] : 1) } }

        /// A measured value: three significant digits.
        static func value(_ v: Double) -> String { String(format: "%.3g", v) }
    }

    // MARK: - Text

    /// Estimated width of `s` at font size `size`: DejaVu Sans's advance widths, rounded up.
    static func textWidth(_ s: String, _ size: Double) -> Double {
        var w = 0.0
        for c in s.unicodeScalars {
            switch c {
            case "i", "j", "l", ".", ",", ":", ";", "|", "!", "'", " ", "(", ")", "[", "]", "f", "t", "r", "I": w += 0.36
            case "m", "w", "M", "W", "@", "%": w += 0.95
            case "A"..."Z": w += 0.74
            case "0"..."9": w += 0.64
            case _ where c.value < 128: w += 0.62
            default: w += 0.8  // Greek, ‖, Δ, …
            }
        }
        return w * size
    }

    /// `s` cut with an ellipsis to fit `width`.
    static func fit(_ s: String, width: Double, size: Double) -> String {
        guard textWidth(s, size) > width else { return s }
        var t = s
        while !t.isEmpty && textWidth(t + "…", size) > width { t.removeLast() }
        return t + "…"
    }

    /// `s` broken at spaces into lines that fit `width`.
    static func wrap(_ s: String, width: Double, size: Double) -> [String] {
        var lines: [String] = [], line = ""
        for word in s.split(separator: " ") {
            let next = line.isEmpty ? String(word) : line + " " + word
            if textWidth(next, size) > width && !line.isEmpty { lines.append(line); line = String(word) } else { line = next }
        }
        if !line.isEmpty { lines.append(fit(line, width: width, size: size)) }
        return lines.isEmpty ? [""] : lines
    }

    static func titleText(_ lines: [String], centre: Double = width / 2) -> String {
        lines.enumerated().map { text($0.element, x: centre, y: margin + titleSize + Double($0.offset) * (titleSize + 4), size: titleSize, anchor: "middle") }.joined()
    }

    static func text(_ s: String, x: Double, y: Double, size: Double, anchor: String = "start", fill: String? = nil,
                     rotate: Double? = nil, cls: String? = nil) -> String {
        var attributes = "x=\"\(r(x))\" y=\"\(r(y))\" font-size=\"\(Int(size))\""
        if anchor != "start" { attributes += " text-anchor=\"\(anchor)\"" }
        if let fill { attributes += " fill=\"\(fill)\"" }
        if let rotate { attributes += " transform=\"rotate(\(Int(rotate)) \(r(x)) \(r(y)))\"" }
        if let cls { attributes += " class=\"\(cls)\"" }
        return "<text \(attributes)>\(escape(s))</text>"
    }

    static func svg(kind: String, width: Double, height: Double, body: String) -> String {
        let (w, h) = (Int(width.rounded(.up)), Int(height.rounded(.up)))
        return """
        <svg xmlns="http://www.w3.org/2000/svg" class="figure" data-kind="\(kind)" width="\(w)" height="\(h)" \
        viewBox="0 0 \(w) \(h)" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(body)</svg>

        """
    }

    /// White to blue (or to red for negative values) by `t` in [0, 1].
    static func colour(_ t: Double, negative: Bool) -> String {
        let shade = Int(255 - 200 * t)
        return negative ? "rgb(255,\(shade),\(shade))" : "rgb(\(shade),\(shade),255)"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Coordinates to one decimal: smaller files, no visible difference.
    static func r(_ v: Double) -> String { String(format: "%.1f", v) }
}
