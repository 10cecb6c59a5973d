import Foundation
import MoLAData
import MoLAReport
import MoLASupport
import MoLATrain
import Testing

@Suite(.serialized) struct HTMLReportTests {
    /// The Markdown subset the reports use becomes HTML; images are inlined, never linked.
    @Test func markdownBecomesSelfContainedHTML() {
        let md = """
            # Run — **m**

            Seed `3`, see [a task](tasks/x/report.md) & more.

            | split | a | Avg |
            |---|---:|---:|
            | test | 1.00 | **2.00** |

            - one
            - two

            ![plot](p.svg) ![gone](missing.svg)
            """
        let html = HTML.body(md) { $0 == "p.svg" ? "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>\n" : nil }
        #expect(html.contains("<h1>Run — <strong>m</strong></h1>"))
        #expect(html.contains("<p>Seed <code>3</code>, see <a href=\"tasks/x/report.html\">a task</a> &amp; more.</p>"))
        #expect(html.contains("<tr><th>split</th><th>a</th><th>Avg</th></tr>"))
        #expect(html.contains("<tr><td>test</td><td class=\"num\">1.00</td><td class=\"num\"><strong>2.00</strong></td></tr>"))
        #expect(html.contains("<ul><li>one</li><li>two</li></ul>"))
        #expect(html.contains("<figure title=\"plot\"><svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg></figure>"))
        #expect(html.contains("<em>[gone]</em>") && !html.contains("src="))
    }

    /// report.html and compare.html of real runs, rendered by a real browser (headless
    /// Chromium): the page loads with its title, logs nothing to the console, refers to no
    /// other file, and the screenshot shows content.
    @Test func reportsRenderInABrowser() throws {
        let chromium = try run("bash", ["-c", "command -v chromium || command -v chromium-browser"])
        try #require(chromium.status == 0, "Chromium is missing: apt-get install chromium (scripts/setup.sh does)")
        let browser = chromium.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tmp = TempDir()
        let (_, uniform) = try TinyData.train(TinyData.config(tmp, method: "uniform", steps: 6, evalEvery: 3, extra: "log_every: 2"))
        let (_, grad) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 6, evalEvery: 3, extra: "log_every: 2"))
        let compare = tmp.path + "/compare"
        try Comparison.of(runs: [uniform, grad]).write(to: compare)

        let indexHash = try Hash.sha256Hex(file: TinyData.directory + "/index.json")
        for (page, title, mustShow) in [(grad + "/report.html", "tiny-mola-grad — mola-grad", ["Reproducibility receipt", indexHash, Machine.description, "Resolved config", "optimizer.lr: 0.05", "adapters.rank: [2,2,2]", "W+ΔW_0"]),
                                        (compare + "/compare.html", "Comparison — uniform, mola-grad", ["The same layer across methods", "mean ± std over seeds", String(indexHash.prefix(16))])] {
            let html = try String(contentsOfFile: page, encoding: .utf8)
            for text in mustShow { #expect(html.contains(text), "\(page) lacks \(text)") }
            #expect(!html.contains("src=") && !html.contains("href=\"http") && !html.contains("<script"), "\(page) must be self-contained")
            #expect(html.components(separatedBy: "<svg").count > 3, "plots inlined in \(page)")

            let flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1600"
            let dom = try run("bash", ["-c", "\(browser) \(flags) --dump-dom 'file://\(page)' 2>/dev/null"])
            #expect(dom.status == 0 && dom.stdout.contains("<title>\(title)</title>"), "\(dom.stdout.prefix(300))")
            let shot = tmp.path + "/" + URL(fileURLWithPath: page).lastPathComponent + ".png"
            let r = try run("bash", ["-c", "\(browser) \(flags) --enable-logging=stderr --v=0 --screenshot='\(shot)' 'file://\(page)' 2>&1"])
            #expect(r.status == 0, "\(r.stdout)")
            let console = r.stdout.split(separator: "\n").filter { $0.contains("CONSOLE") }
            #expect(console.isEmpty, "console messages: \(console)")

            let bytes = try Data(contentsOf: URL(fileURLWithPath: shot))
            let image = try bytes.withUnsafeBytes { try PNGCodec.decode($0, channels: 3) }
            #expect(image.width == 1200 && image.height == 1600)
            var inked = 0, colours = Set<UInt32>()
            for i in stride(from: 0, to: image.pixels.count, by: 3) {
                let (r, g, b) = (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2])
                if min(r, g, b) < 200 { inked += 1 }
                colours.insert(UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b))
            }
            // Text, tables and coloured plot lines: a blank or error page has neither.
            #expect(Double(inked) / Double(image.width * image.height) > 0.01, "\(page): \(inked) dark pixels")
            #expect(colours.count > 50, "\(page): \(colours.count) colours")
            try checkFigures(page, browser: browser, flags: flags, tmp: tmp)
        }
    }

    /// What the browser measures of every figure of a page, written into a test copy of
    /// the page by a script and read back from the DOM.
    struct FigureCheck: Decodable {
        var kind: String
        var title: String
        var axisTitles: Int
        var colourScales: Int
        /// Texts whose box leaves the figure's.
        var outside: [String]
        /// Pairs of texts whose boxes overlap.
        var overlapping: [[String]]
    }

    static let measuringScript = """
        <script>
        const found = [];
        for (const svg of document.querySelectorAll('svg.figure')) {
          const frame = svg.getBoundingClientRect();
          const texts = [...svg.querySelectorAll('text')].map(t => ({ s: t.textContent, b: t.getBoundingClientRect() }));
          const outside = texts.filter(t => t.b.left < frame.left - 0.5 || t.b.right > frame.right + 0.5
                                         || t.b.top < frame.top - 0.5 || t.b.bottom > frame.bottom + 0.5).map(t => t.s);
          const overlapping = [];
          for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
            const a = texts[i].b, b = texts[j].b;
            const dx = Math.min(a.right, b.right) - Math.max(a.left, b.left), dy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
            if (dx > 1 && dy > 1) overlapping.push([texts[i].s, texts[j].s]);
          }
          found.push({ kind: svg.dataset.kind, title: texts.length ? texts[0].s : '', axisTitles: svg.querySelectorAll('.axis-title').length,
                       colourScales: svg.querySelectorAll('.colour-scale').length, outside, overlapping });
        }
        const out = document.createElement('pre');
        out.id = 'figure-check';
        out.textContent = JSON.stringify(found);
        document.body.appendChild(out);
        </script>
        """

    /// No text of any figure lies outside it or on another text; every chart has both axis
    /// titles, every heatmap its colour scale (and the title of the scale).
    func checkFigures(_ page: String, browser: String, flags: String, tmp: TempDir) throws {
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let figures = html.components(separatedBy: "<svg").count - 1
        let copy = page + ".measured.html"
        try html.replacingOccurrences(of: "</body>", with: Self.measuringScript + "</body>").write(toFile: copy, atomically: true, encoding: .utf8)
        defer { unlink(copy) }
        let dom = try run("bash", ["-c", "\(browser) \(flags) --dump-dom 'file://\(copy)' 2>/dev/null"])
        guard let start = dom.stdout.range(of: "<pre id=\"figure-check\">"), let end = dom.stdout.range(of: "</pre>", range: start.upperBound..<dom.stdout.endIndex) else {
            Issue.record("\(page): the measuring script wrote nothing")
            return
        }
        let json = String(dom.stdout[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        let checks = try JSONDecoder().decode([FigureCheck].self, from: Data(json.utf8))
        #expect(checks.count == figures && figures >= 4, "\(page): \(checks.count) figures measured of \(figures)")
        for c in checks {
            let name = "\(URL(fileURLWithPath: page).lastPathComponent): \(c.kind) '\(c.title)'"
            #expect(c.outside.isEmpty, "\(name): text outside the figure: \(c.outside)")
            #expect(c.overlapping.isEmpty, "\(name): texts on top of each other: \(c.overlapping)")
            if c.kind == "heatmap" {
                #expect(c.colourScales == 1 && c.axisTitles >= 1, "\(name): no colour scale with its title")
            } else {
                #expect(c.axisTitles == 2, "\(name): \(c.axisTitles) axis titles")
            }
        }
    }
}
