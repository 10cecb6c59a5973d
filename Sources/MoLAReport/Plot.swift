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
                // Values on top of a single series' bars, where each fits its bar's slot.
                if series.count == 1, textWidth(String(format: "%.1f", v), tickSize) < slot - 2 {
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
                        scaleTitle: String, rowTitle: String? = nil, columnTitle: String? = nil) -> String {
        let hi = signed ? 1 : max(values.flatMap { $0 }.filter(\.isFinite).max() ?? 1, 1e-9)
        let lo = signed ? -1.0 : 0
        let rowTitleBand = rowTitle == nil ? 0 : labelSize + 8
        let rowLabel = (rows.map { textWidth($0, tickSize) }.max() ?? 0) + 8 + rowTitleBand
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
        let height = top + gridH + columnLabels + (columnTitle == nil ? 0 : labelSize + 8) + margin
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
        if let rowTitle {
            body += text(rowTitle, x: margin + labelSize, y: top + gridH / 2, size: labelSize, anchor: "middle", rotate: -90, cls: "axis-title")
        }
        if let columnTitle {
            body += text(columnTitle, x: left + cell * Double(columns.count) / 2, y: top + gridH + columnLabels + labelSize + 2,
                         size: labelSize, anchor: "middle", cls: "axis-title")
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
}
