import Foundation

/// Progress of long work on standard error: a redrawn bar on a terminal (count, rate, ETA),
/// plain log lines every few seconds otherwise (CI logs, pipes). Unchecked Sendable:
/// parallel workers advance it; its counts and drawing happen under `lock`.
public final class Progress: @unchecked Sendable {
    let label: String
    let unit: String
    public private(set) var total: Int
    public private(set) var done = 0
    let start = Date()
    private var lastDraw = Date.distantPast
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let enabled: Bool
    private let lock = NSLock()
    /// Extra text shown after the counts (e.g. the running loss).
    public var status = ""

    public init(label: String, total: Int, unit: String = "images", enabled: Bool = true) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
    }

    public var elapsed: Double { Date().timeIntervalSince(start) }
    public var rate: Double { Double(done) / max(elapsed, 1e-9) }

    public func advance(_ n: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        done += n
        draw(force: false)
    }

    /// Ends the bar's line (a terminal) or prints the final count (a log).
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        draw(force: true)
        if enabled && isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(force: Bool) {
        guard enabled else { return }
        let now = Date()
        let interval = isTerminal ? 0.1 : 5.0
        guard force || now.timeIntervalSince(lastDraw) >= interval else { return }
        lastDraw = now
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let counts = "\(done)/\(total) \(unit)  \(Self.human(rate)) \(unit)/s  ETA \(Self.clock(eta))"
        let extra = status.isEmpty ? "" : "  \(status)"
        if isTerminal {
            let width = 24, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let line = "\r\u{1B}[2K\(label) [\(bar)] \(String(format: "%5.1f%%", fraction * 100)) \(counts)\(extra)"
            FileHandle.standardError.write(Data(line.utf8))
        } else {
            FileHandle.standardError.write(Data("\(label): \(String(format: "%.0f%%", fraction * 100)) \(counts)\(extra)\n".utf8))
        }
    }

    public static func human(_ v: Double) -> String {
        v >= 1e6 ? String(format: "%.2fM", v / 1e6) : v >= 1e3 ? String(format: "%.1fk", v / 1e3) : String(format: "%.0f", v)
    }

    public static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
