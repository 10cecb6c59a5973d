import Foundation
import MoLASupport
import Yams

/// A pipeline file (`pipelines/*.yaml`): stages with a command, the files they read (`deps`),
/// the parameter keys they read (`params`) and the files they write (`outs`). Stages form a
/// DAG through deps and outs.
///
///     root: ..                      # paths and commands are relative to this (default ..)
///     params: pipelines/params.yaml # the parameters file (default: none)
///     vars: {dataset: digits-fashion}
///     stages:
///       ingest:
///         cmd: mola-prep ingest data-manifests/${vars.dataset}.yaml
///         deps: [data-manifests/${vars.dataset}.yaml]
///         outs: [datasets/${vars.dataset}]
///       train:
///         foreach: [uniform, mola-grad]      # one stage per item: train@uniform, …
///         do:
///           cmd: mola-train run configs/${item}.yaml --set epochs=${params.quickstart.epochs}
///           deps: [configs/${item}.yaml, datasets/${vars.dataset}]
///           params: [quickstart.epochs]
///           outs: [runs/${item}]
///       compare:
///         cmd: mola-train compare runs/${items.train}   # one word per item of train's foreach
///         deps: [runs/${items.train}]                   # one dep per item
///         outs: [runs/compare]
///
/// `foreach` is a list, or the files a pattern matches (`{files: configs/x/*.yaml, except:
/// [common]}`: each item is a file's name without its extension, in name order), so a new
/// config file joins the pipeline without an edit here.
public struct Pipeline {
    public struct Stage: Equatable {
        public var name: String
        public var command: String
        public var deps: [String]
        public var params: [String: String]  // key → value (as text) the stage reads
        public var outs: [String]
    }

    public let file: String
    public let root: String
    public let stages: [Stage]
    /// The pipeline file as a command run from the root names it (`pipelines/x.yaml`).
    public var displayFile: String {
        // By components: paths may differ in their separators (`/tmp//x`).
        let path = URL(fileURLWithPath: file).standardized.pathComponents, top = URL(fileURLWithPath: root).standardized.pathComponents
        guard path.count > top.count, Array(path.prefix(top.count)) == top else { return URL(fileURLWithPath: file).standardized.path }
        return path.dropFirst(top.count).joined(separator: "/")
    }
    /// Stage index → indices of the stages it depends on.
    public let upstream: [[Int]]

    public static func load(_ file: String, overrides: [String: String] = [:]) throws -> Pipeline {
        let top = try ConfigValue.load(file: file).mapping(allowed: ["root", "params", "vars", "stages"])
        let dir = (URL(fileURLWithPath: file).standardized.path as NSString).deletingLastPathComponent
        let root = URL(fileURLWithPath: dir + "/" + (try top["root"]?.string() ?? "..")).standardized.path
        var vars: [String: String] = [:]
        if let v = top["vars"] {
            guard case .mapping(let m) = v.node else { throw v.error("vars must be a mapping of names to values") }
            for (k, val) in m { vars[k.string ?? ""] = val.string ?? "" }
        }
        var params: [String: String] = [:]
        var paramsFile: String?
        if let p = top["params"] {
            let path = root + "/" + (try p.string())
            paramsFile = path
            guard FileIO.exists(path) else { throw p.error("parameters file \(path) not found", fix: "create it or remove the params key") }
            params = try flatten(ConfigValue.load(file: path).node, prefix: "")
        }
        for (k, v) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let old = params[k] else {
                let hint = closest(k, among: params.keys.sorted()).map { " (did you mean '\($0)'?)" } ?? ""
                throw DataError(file: paramsFile ?? file, "--set \(k): no such parameter\(hint)", fix: "parameters: \(params.keys.sorted().joined(separator: ", "))")
            }
            guard fits(v, kindOf: old) else {
                throw DataError(file: paramsFile ?? file, "--set \(k)=\(v): expected \(kind(old)) like the file's value \(old)",
                                fix: "give \(kind(old)), e.g. --set \(k)=\(old)")
            }
            params[k] = v
        }
        guard case .mapping(let stageNodes) = try top.required("stages").node else { throw top.at("stages").error("stages must be a mapping") }
        var stages: [Stage] = []
        var itemsOf: [String: [String]] = [:]
        for (k, v) in stageNodes {
            let name = k.string ?? ""
            let node = ConfigValue(node: v, file: file, keyPath: "stages.\(name)")
            let m = try node.mapping(allowed: ["cmd", "deps", "params", "outs", "foreach", "do"])
            if let each = m["foreach"] {
                let body = try m.required("do", hint: "foreach needs a `do:` with the stage's cmd, deps, params and outs")
                let items = try foreachItems(each, root: root)
                itemsOf[name] = items
                for item in items {
                    stages.append(try stage("\(name)@\(item)", body, item: item, vars: vars, params: params, itemsOf: itemsOf))
                }
            } else {
                stages.append(try stage(name, node, item: nil, vars: vars, params: params, itemsOf: itemsOf))
            }
        }
        return try Pipeline(file: file, root: root, stages: stages)
    }

    /// A foreach's items: a list, or `{files: PATTERN, except: [names]}` — the names without
    /// extension of the files PATTERN (a path whose last part may hold `*`) matches.
    static func foreachItems(_ each: ConfigValue, root: String) throws -> [String] {
        guard case .mapping = each.node else { return try each.strings() }
        let m = try each.mapping(allowed: ["files", "except"])
        let pattern = try m.required("files", hint: "e.g. files: configs/digits-fashion/*.yaml").string()
        let except = Set(try m["except"]?.strings() ?? [])
        let dir = (pattern as NSString).deletingLastPathComponent, glob = (pattern as NSString).lastPathComponent
        let parts = glob.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + "/" + dir) else {
            throw each.error("foreach files: no folder \(dir)", fix: "patterns are relative to the pipeline's root")
        }
        func matches(_ name: String) -> Bool {
            guard parts.count > 1 else { return name == glob }
            guard name.hasPrefix(parts[0]), name.hasSuffix(parts.last!), name.count >= parts[0].count + parts.last!.count else { return false }
            var rest = Substring(name.dropFirst(parts[0].count).dropLast(parts.last!.count))
            for middle in parts.dropFirst().dropLast() {
                guard let r = rest.range(of: middle) else { return false }
                rest = rest[r.upperBound...]
            }
            return true
        }
        let items = names.filter(matches).map { ($0 as NSString).deletingPathExtension }.filter { !except.contains($0) }.sorted()
        guard !items.isEmpty else { throw each.error("foreach files: \(pattern) matches nothing", fix: "check the pattern") }
        return items
    }

    static func stage(_ name: String, _ node: ConfigValue, item: String?, vars: [String: String], params: [String: String],
                      itemsOf: [String: [String]]) throws -> Stage {
        let m = try node.mapping(allowed: ["cmd", "deps", "params", "outs"])
        func expand(_ text: String, at v: ConfigValue) throws -> String {
            var out = "", rest = Substring(text)
            while let open = rest.range(of: "${") {
                out += rest[..<open.lowerBound]
                guard let close = rest[open.upperBound...].firstIndex(of: "}") else { throw v.error("unclosed ${ in '\(text)'") }
                let key = String(rest[open.upperBound..<close])
                if key == "item", let item { out += item }
                else if key.hasPrefix("vars."), let value = vars[String(key.dropFirst(5))] { out += value }
                else if key.hasPrefix("params."), let value = params[String(key.dropFirst(7))] { out += value }
                else if key.hasPrefix("items.") {
                    throw v.error("${\(key)}: no earlier stage '\(key.dropFirst(6))' with a foreach", fix: "name a foreach stage above this one")
                }
                else { throw v.error("unknown variable ${\(key)}", fix: "use ${vars.NAME}, ${params.KEY}, ${item} (inside foreach) or ${items.STAGE}") }
                rest = rest[rest.index(after: close)...]
            }
            return out + rest
        }
        /// A word holding `${items.STAGE}` becomes one word per item of that stage.
        func words(_ text: String) -> [String] {
            guard let open = text.range(of: "${items."), let close = text[open.upperBound...].firstIndex(of: "}"),
                  let items = itemsOf[String(text[open.upperBound..<close])] else { return [text] }
            return items.flatMap { words(text.replacingCharacters(in: open.lowerBound...close, with: $0)) }
        }
        func list(_ key: String) throws -> [String] {
            guard let v = m[key] else { return [] }
            return try v.list().flatMap { entry in try words(try entry.string()).map { try expand($0, at: entry) } }
        }
        var selected: [String: String] = [:]
        if let p = m["params"] {
            for keyNode in try p.list() {
                let key = try keyNode.string()
                guard let value = params[key] else { throw keyNode.error("parameter '\(key)' is not in the parameters file", fix: "add it there or fix the name") }
                selected[key] = value
            }
        }
        let cmd = try m.required("cmd")
        let command = try cmd.string().split(separator: " ", omittingEmptySubsequences: false).flatMap { words(String($0)) }.joined(separator: " ")
        return Stage(name: name, command: try expand(command, at: cmd), deps: try list("deps"), params: selected, outs: try list("outs"))
    }

    /// What a parameter's value is, so an override keeps its type (the file's `8` takes
    /// `12`, not `twelve`; a list takes a list).
    static func kind(_ text: String) -> String {
        if text.hasPrefix("[") { return "a list" }
        if Int(text) != nil { return "an integer" }
        if Double(text) != nil { return "a number" }
        if ["true", "false", "yes", "no", "on", "off"].contains(text.lowercased()) { return "true or false" }
        return "text"
    }

    static func fits(_ value: String, kindOf old: String) -> Bool {
        switch kind(old) {
        case "a list": return value.hasPrefix("[") && value.hasSuffix("]")
        case "an integer": return Int(value) != nil
        case "a number": return Double(value) != nil
        case "true or false": return kind(value) == "true or false"
        default: return true
        }
    }

    /// Flattens nested mappings to dotted keys (`quickstart.epochs`).
    static func flatten(_ node: Yams.Node, prefix: String) throws -> [String: String] {
        var out: [String: String] = [:]
        switch node {
        case .mapping(let m):
            for (k, v) in m { out.merge(try flatten(v, prefix: prefix.isEmpty ? (k.string ?? "") : "\(prefix).\(k.string ?? "")")) { a, _ in a } }
        case .scalar(let s): out[prefix] = s.string
        case .sequence(let seq): out[prefix] = "[" + seq.map { $0.string ?? "?" }.joined(separator: ", ") + "]"
        case .alias: break
        }
        return out
    }

    /// Builds the graph and refuses duplicate outs, deps nobody produces that do not
    /// exist, and cycles.
    init(file: String, root: String, stages: [Stage]) throws {
        self.file = file
        self.root = root
        self.stages = stages
        var producer: [String: Int] = [:]
        for (i, s) in stages.enumerated() {
            for o in s.outs {
                let key = Self.normal(o)
                if let j = producer[key] {
                    throw DataError(file: file, "stages '\(stages[j].name)' and '\(s.name)' both write \(o)", fix: "give each out one stage")
                }
                producer[key] = i
            }
        }
        var upstream = Array(repeating: [Int](), count: stages.count)
        for (i, s) in stages.enumerated() {
            for d in s.deps {
                let key = Self.normal(d)
                // A dep inside (or equal to) another stage's out depends on that stage.
                let hit = producer.first { key == $0.key || key.hasPrefix($0.key + "/") || $0.key.hasPrefix(key + "/") }
                if let (_, j) = hit {
                    if j != i && !upstream[i].contains(j) { upstream[i].append(j) }
                } else if !FileIO.exists(root + "/" + d) {
                    throw DataError(file: file, location: "stages.\(s.name).deps", "\(d) does not exist and no stage writes it",
                                    fix: "create it, fix the path, or add the stage that makes it")
                }
            }
        }
        self.upstream = upstream.map { $0.sorted() }
        // Cycle check: depth-first, naming the loop.
        var state = Array(repeating: 0, count: stages.count)  // 0 new, 1 on path, 2 done
        var path: [Int] = []
        func visit(_ i: Int) throws {
            if state[i] == 2 { return }
            if state[i] == 1 {
                let loop = path[path.firstIndex(of: i)!...].map { stages[$0].name } + [stages[i].name]
                throw DataError(file: file, "the stages form a cycle: \(loop.joined(separator: " → "))", fix: "a stage cannot depend on its own outs, directly or through others")
            }
            state[i] = 1; path.append(i)
            for j in self.upstream[i] { try visit(j) }
            state[i] = 2; path.removeLast()
        }
        for i in stages.indices { try visit(i) }
    }

    static func normal(_ p: String) -> String {
        var s = p
        while s.hasSuffix("/") { s.removeLast() }
        if s.hasPrefix("./") { s.removeFirst(2) }
        return s
    }

    /// Stage indices in a topological order (stable: file order where free).
    public var order: [Int] {
        var done = Set<Int>(), out: [Int] = []
        func visit(_ i: Int) {
            if done.contains(i) { return }
            done.insert(i)
            for j in upstream[i] { visit(j) }
            out.append(i)
        }
        for i in stages.indices { visit(i) }
        return out
    }
}

