import Foundation

/// How a figure is laid out: its frame (title, axes, legend below) and its numeric axes.
extension Plot {
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
        /// The height of the x tick labels under the plot.
        let tickBand: Double
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
            tickBand = xTickRotation ? (xTickLabels.map { textWidth($0, tickSize) }.max() ?? 0) * 0.5 + tickSize + 10 : tickSize + 8
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
}
