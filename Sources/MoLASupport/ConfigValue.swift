import Foundation
import Yams

/// A value read from a YAML file, remembering where it came from so every complaint names
/// the file, the line and the key path (`tasks[1].sources[0].split`).
///
/// Manifests, training configs and pipelines are all read through this, so they share one
/// behaviour: unknown keys are errors with a did-you-mean, types are checked, and the
/// message says how to fix the file.
public struct ConfigValue {
    public let node: Node
    public let file: String
    public let keyPath: String

    /// Parses `file` (or `text`, when given, as if read from `file`).
    public static func load(file: String, text: String? = nil) throws -> ConfigValue {
        let yaml: String
        if let text { yaml = text } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw DataError(file: file, "file not found", fix: "check the path")
            }
            yaml = String(decoding: data, as: UTF8.self)
        }
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch {
            throw DataError(file: file, "not valid YAML: \(error)", fix: "fix the syntax at the line shown")
        }
        guard let node else { throw DataError(file: file, "the file is empty", fix: "see the examples in the README") }
        // Aliases share nodes, so a few lines can stand for billions of values (a "billion
        // laughs" document): everything that reads a config walks it, so refuse any that
        // expands past a bound no real manifest, config or pipeline comes near.
        guard Self.expandsWithin(node, budget: maxValues) else {
            throw DataError(file: file, "the document expands to more than \(maxValues) values (aliases repeating aliases?)",
                            fix: "write the values out, or use fewer nested aliases")
        }
        return ConfigValue(node: node, file: file, keyPath: "")
    }

    /// The most values a document may expand to (aliases counted at every use).
    public static let maxValues = 100_000

    /// Whether `node` holds at most `budget` values, counting each alias at each use; stops
    /// as soon as the budget is spent.
    static func expandsWithin(_ node: Node, budget: Int) -> Bool {
        var left = budget
        func walk(_ n: Node) -> Bool {
            left -= 1
            if left < 0 { return false }
            switch n {
            case .mapping(let m): return m.allSatisfy { walk($0.key) && walk($0.value) }
            case .sequence(let q): return q.allSatisfy(walk)
            default: return true
            }
        }
        return walk(node)
    }

    /// This document with `key.path=value` assignments applied (command-line `--set`), each
    /// value read as YAML (`8`, `sgd`, `[4, 4, 8]`, `{center: 40, width: 400}`), missing
    /// mappings created. The result is then read like the file itself, so an unknown key
    /// gets a did-you-mean and a wrong type the expected one, naming the key path.
    public func overriding(_ assignments: [String]) throws -> ConfigValue {
        var root = node
        for assignment in assignments {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            let keys = parts.first.map { $0.split(separator: ".", omittingEmptySubsequences: false).map(String.init) } ?? []
            guard parts.count == 2, !keys.isEmpty, !keys.contains(where: \.isEmpty) else {
                throw DataError(file: file, "cannot apply --set \(assignment)", fix: "use --set key.path=value, e.g. --set adapters.rank=8")
            }
            let value: Node
            do { value = try Yams.compose(yaml: parts[1]) ?? Node("") } catch {
                throw DataError(file: file, "--set \(assignment): the value is not valid YAML: \(error)", fix: "quote it, e.g. --set name='a b'")
            }
            root = try Self.assign(Self.unmarked(value), at: keys[...], in: root, path: parts[0])
        }
        return ConfigValue(node: root, file: file, keyPath: keyPath)
    }

    /// This document merged onto the one its top-level `base:` names (a path relative to
    /// this file; bases may have bases): mappings merge key by key, deeper ones too, and
    /// this file's own values win; lists and scalars replace. A bad key from the base is
    /// reported by its key path (its lines are in another file).
    public func resolvingBase(depth: Int = 0) throws -> ConfigValue {
        guard case .mapping(var m) = node, let baseNode = m[Node("base")] else { return self }
        guard case .scalar(let s) = baseNode else { throw ConfigValue(node: baseNode, file: file, keyPath: "base").error("expected a file name") }
        guard depth < 8 else { throw error("base files nest more than 8 deep (a cycle?)", fix: "check the base: keys") }
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let path = s.string.hasPrefix("/") ? s.string : dir + "/" + s.string
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigValue(node: baseNode, file: file, keyPath: "base").error("base file not found: \(path)", fix: "base paths are relative to this file")
        }
        let base = try ConfigValue.load(file: path).resolvingBase(depth: depth + 1)
        m[Node("base")] = nil
        return ConfigValue(node: Self.merge(.mapping(m), onto: Self.unmarked(base.node)), file: file, keyPath: keyPath)
    }

    static func merge(_ own: Node, onto base: Node) -> Node {
        guard case .mapping(let o) = own, case .mapping(var b) = base else { return own }
        for (k, v) in o { b[k] = b[k].map { merge(v, onto: $0) } ?? v }
        return .mapping(b)
    }

    /// The node without source positions (a value from the command line has no line in the
    /// file: errors then name only its key path).
    static func unmarked(_ node: Node) -> Node {
        switch node {
        case .scalar(let s): return .scalar(.init(s.string, s.tag, s.style))
        case .sequence(let q): return .sequence(.init(q.map(unmarked), q.tag, q.style))
        case .mapping(let m): return .mapping(.init(m.map { (unmarked($0.key), unmarked($0.value)) }, m.tag, m.style))
        case .alias: return node
        }
    }

    static func assign(_ value: Node, at keys: ArraySlice<String>, in node: Node, path: String) throws -> Node {
        guard let key = keys.first else { return value }
        guard case .mapping(var m) = node else {
            throw DataError(file: "--set \(path)", "'\(key)' is inside a value that is not a mapping", fix: "check the key path")
        }
        let child = m[Node(key)] ?? Node.mapping(Node.Mapping([]))
        m[Node(key)] = try assign(value, at: keys.dropFirst(), in: child, path: path)
        return .mapping(m)
    }

    public init(node: Node, file: String, keyPath: String) {
        self.node = node
        self.file = file
        self.keyPath = keyPath
    }

    var where_: String {
        var parts: [String] = []
        if let m = node.mark { parts.append("line \(m.line)") }
        if !keyPath.isEmpty { parts.append(keyPath) }
        return parts.joined(separator: ", ")
    }

    /// An error at this value.
    public func error(_ message: String, fix: String? = nil) -> DataError {
        DataError(file: file, location: where_.isEmpty ? nil : where_, message, fix: fix)
    }

    public var isNull: Bool {
        if case .scalar(let s) = node { return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string) }
        return false
    }

    /// This value as a mapping whose keys must all be in `allowed`.
    public func mapping(allowed: [String]) throws -> ConfigMapping {
        guard case .mapping(let m) = node else {
            throw error("expected a mapping of keys (\(allowed.prefix(6).joined(separator: ", ")), …), found \(kindName)")
        }
        var entries: [(String, ConfigValue)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw error("keys must be plain words") }
            let key = ks.string
            let child = ConfigValue(node: v, file: file, keyPath: keyPath.isEmpty ? key : "\(keyPath).\(key)")
            guard allowed.contains(key) else {
                let place = keyPath.isEmpty ? "at the top level" : "in \(keyPath)"
                let suggestion = closest(key, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                throw child.error("unknown key '\(key)' \(place)\(suggestion)",
                                  fix: "allowed keys here: \(allowed.joined(separator: ", "))")
            }
            guard !entries.contains(where: { $0.0 == key }) else { throw child.error("key '\(key)' appears twice") }
            entries.append((key, child))
        }
        return ConfigMapping(owner: self, entries: entries)
    }

    var kindName: String {
        switch node {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    public func string() throws -> String {
        guard case .scalar(let s) = node, !isNull else { throw error("expected a text value, found \(kindName)") }
        return s.string
    }

    public func int(in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard case .scalar(let s) = node, let v = Int(s.string.replacingOccurrences(of: "_", with: "")) else {
            throw error("expected a whole number, found \(kindName)")
        }
        guard range.contains(v) else { throw error("\(v) is out of range \(describe(range))") }
        return v
    }

    public func double(in range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude) throws -> Double {
        guard case .scalar(let s) = node, let v = Double(s.string.replacingOccurrences(of: "_", with: "")) else {
            throw error("expected a number, found \(kindName)")
        }
        guard range.contains(v) else { throw error("\(v) is out of range \(describe(range))") }
        return v
    }

    public func bool() throws -> Bool {
        guard case .scalar(let s) = node else { throw error("expected true or false, found \(kindName)") }
        switch s.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("expected true or false, found '\(s.string)'")
        }
    }

    /// One of the raw values of a `String`-backed enum.
    public func choice<E: RawRepresentable & CaseIterable>(_ type: E.Type) throws -> E where E.RawValue == String {
        let s = try string()
        guard let v = E(rawValue: s) else {
            let all = E.allCases.map(\.rawValue)
            let hint = closest(s, among: all).map { " (did you mean '\($0)'?)" } ?? ""
            throw error("'\(s)' is not one of \(all.joined(separator: ", "))\(hint)")
        }
        return v
    }

    public func list() throws -> [ConfigValue] {
        guard case .sequence(let seq) = node else { throw error("expected a list, found \(kindName)") }
        return seq.enumerated().map { ConfigValue(node: $1, file: file, keyPath: "\(keyPath)[\($0)]") }
    }

    public func strings() throws -> [String] { try list().map { try $0.string() } }
}

/// The keys of a YAML mapping, already checked against the allowed set.
public struct ConfigMapping {
    public let owner: ConfigValue
    let entries: [(String, ConfigValue)]

    public subscript(_ key: String) -> ConfigValue? {
        entries.first { $0.0 == key && !$0.1.isNull }?.1
    }

    public var keys: [String] { entries.map(\.0) }

    /// The value at `key` when present, else the mapping itself: where to point an error.
    public func at(_ key: String) -> ConfigValue { self[key] ?? owner }

    public func required(_ key: String, hint: String? = nil) throws -> ConfigValue {
        guard let v = self[key] else {
            throw owner.error("missing key '\(key)'\(owner.keyPath.isEmpty ? "" : " in \(owner.keyPath)")", fix: hint)
        }
        return v
    }
}

/// The option the user most likely meant by `word` (a prefix, or within a few edits), or nil.
public func closest(_ word: String, among options: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var prev = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var cur = [i + 1]
            for (j, cb) in b.enumerated() {
                cur.append(min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (ca == cb ? 0 : 1)))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let lower = word.lowercased()
    if let prefix = options.first(where: { lower.hasPrefix($0.lowercased()) || $0.lowercased().hasPrefix(lower) }),
       lower.count >= 3 { return prefix }
    let w = Array(lower)
    let best = options.map { ($0, distance(w, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, w.count / 3) else { return nil }
    return best.0
}

private func describe<T>(_ r: ClosedRange<T>) -> String {
    "\(r.lowerBound)…\(r.upperBound)"
}

extension ConfigValue {
    /// One of the names a registry knows, with a did-you-mean.
    public func registered<T>(_ names: [String], _ lookup: (String) -> T?) throws -> T {
        let s = try string()
        guard let v = lookup(s) else {
            let hint = closest(s, among: names).map { " (did you mean '\($0)'?)" } ?? ""
            throw error("'\(s)' is not one of \(names.joined(separator: ", "))\(hint)")
        }
        return v
    }

    /// The value at a dotted key path below this mapping (nil when absent).
    public func valueAt(path: String) -> ConfigValue? {
        var v = self
        for key in path.split(separator: ".").map(String.init) {
            guard case .mapping(let m) = v.node, let child = m[Node(key)] else { return nil }
            v = ConfigValue(node: child, file: file, keyPath: v.keyPath.isEmpty ? key : "\(v.keyPath).\(key)")
        }
        return v
    }
}
