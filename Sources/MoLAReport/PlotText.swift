import Foundation

/// Text in figures: estimated widths, fitting and wrapping, and the SVG elements.
extension Plot {
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
