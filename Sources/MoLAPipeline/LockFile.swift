import Foundation
import MoLASupport
import Yams

/// `<pipeline>.lock`: for each stage that last succeeded, what it ran with. YAML with
/// sorted keys, so a diff shows exactly what changed.
public struct LockFile: Equatable {
    public struct Entry: Equatable {
        public var command: String
        public var tool: String
        public var deps: [String: String]
        public var params: [String: String]
        public var outs: [String: String]
    }
    public var stages: [String: Entry] = [:]

    public static func read(_ path: String) throws -> LockFile {
        guard FileIO.exists(path) else { return LockFile() }
        let text = String(decoding: try FileIO.read(path), as: UTF8.self)
        guard let node = try? Yams.compose(yaml: text), case .mapping(let top) = node, let st = top["stages"], case .mapping(let stages) = st else {
            throw DataError(file: path, "the lock file cannot be read", fix: "delete it: every stage will run once and it will be rewritten")
        }
        var lock = LockFile()
        for (k, v) in stages {
            guard case .mapping(let m) = v else { continue }
            func map(_ key: String) -> [String: String] {
                guard let n = m[key], case .mapping(let mm) = n else { return [:] }
                return Dictionary(uniqueKeysWithValues: mm.map { ($0.key.string ?? "", $0.value.string ?? "") })
            }
            lock.stages[k.string ?? ""] = Entry(command: m["cmd"]?.string ?? "", tool: m["tool"]?.string ?? "", deps: map("deps"),
                                                 params: map("params"), outs: map("outs"))
        }
        return lock
    }

    public func write(_ path: String) throws {
        func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
        func block(_ name: String, _ m: [String: String]) -> String {
            if m.isEmpty { return "    \(name): {}\n" }
            return "    \(name):\n" + m.keys.sorted().map { "      \(q($0)): \(q(m[$0]!))\n" }.joined()
        }
        var out = "# Written by mola-pipeline: what each stage last ran with. Do not edit.\nschema: mola-pipeline-lock/1\nstages:\n"
        for name in stages.keys.sorted() {
            let e = stages[name]!
            out += "  \(q(name)):\n    cmd: \(q(e.command))\n    tool: \(q(e.tool))\n"
            out += block("deps", e.deps) + block("params", e.params) + block("outs", e.outs)
        }
        try FileIO.writeAtomically(out, to: path)
    }
}
