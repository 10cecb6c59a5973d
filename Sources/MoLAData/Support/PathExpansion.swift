import Foundation
import MoLASupport

/// Expands the paths written in manifests and configs:
/// `~` (home), `$NAME` / `${NAME}` (environment), `${NAME:-default}` (the default, which
/// may start with `~`, when NAME is unset or empty), `${python:pkg}` (the directory of an
/// installed Python package, found with `importlib` without importing it), and relative
/// paths against the directory of the file that names them.
public enum PathExpansion {
    /// Package → folder, found once per process (a Python start each). Unsafe only to the
    /// compiler: every access holds `cacheLock` (held across the lookup, which a Mutex's
    /// closure could not throw out of cleanly).
    nonisolated(unsafe) static var pythonCache: [String: String] = [:]
    static let cacheLock = NSLock()

    public static func expand(_ raw: String, relativeTo baseDir: String, at value: ConfigValue) throws -> String {
        var out = ""
        var s = Substring(raw)
        if s == "~" || s.hasPrefix("~/") {
            out = NSHomeDirectory()
            s = s.dropFirst()
        }
        while let dollar = s.firstIndex(of: "$") {
            out += s[..<dollar]
            var rest = s[s.index(after: dollar)...]
            let name: String
            if rest.first == "{" {
                guard let close = rest.firstIndex(of: "}") else {
                    throw value.error("unclosed ${ in path '\(raw)'", fix: "write ${NAME} or $NAME")
                }
                name = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") } ?? rest.endIndex
                name = String(rest[..<end])
                rest = rest[end...]
            }
            if name.hasPrefix("python:") {
                out += try pythonPackageDir(String(name.dropFirst("python:".count)), at: value)
            } else if let split = name.range(of: ":-") {
                let variable = String(name[..<split.lowerBound]), fallback = String(name[split.upperBound...])
                let v = ProcessInfo.processInfo.environment[variable] ?? ""
                out += !v.isEmpty ? v : fallback == "~" || fallback.hasPrefix("~/") ? NSHomeDirectory() + fallback.dropFirst() : fallback
            } else {
                guard !name.isEmpty, let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
                    throw value.error("the path '\(raw)' uses $\(name), which is not set",
                                      fix: "export \(name)=/path/to/the/data before running")
                }
                out += v
            }
            s = rest
        }
        out += s
        if !out.hasPrefix("/") {
            out = URL(fileURLWithPath: baseDir).appendingPathComponent(out).standardized.path
        }
        return out
    }

    /// The directory of an installed Python package, e.g. `mlxtend` → …/site-packages/mlxtend.
    public static func pythonPackageDir(_ package: String, at value: ConfigValue) throws -> String {
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let hit = pythonCache[package] { return hit }
        guard package.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else {
            throw value.error("'\(package)' is not a Python package name")
        }
        let found = locatePythonPackages([package])
        guard let dir = found[package] else {
            let pipName = ["sklearn": "scikit-learn"][package] ?? package
            throw value.error("the Python package '\(package)' is not installed (or python3 is missing)",
                              fix: "pip install \(pipName)  (or run scripts/setup.sh)")
        }
        pythonCache[package] = dir
        return dir
    }

    /// Resolves every `${python:pkg}` of a file's text with one Python start (~0.1 s each).
    public static func preloadPythonPackages(in text: String) {
        var names: [String] = []
        var rest = Substring(text)
        while let r = rest.range(of: "${python:") {
            rest = rest[r.upperBound...]
            if let close = rest.firstIndex(of: "}") { names.append(String(rest[..<close])) }
        }
        let valid = names.filter { n in !n.isEmpty && n.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." } }
        cacheLock.lock(); defer { cacheLock.unlock() }
        let missing = Array(Set(valid.filter { pythonCache[$0] == nil })).sorted()
        guard !missing.isEmpty else { return }
        for (k, v) in locatePythonPackages(missing) { pythonCache[k] = v }
    }

    /// Asks python3 where packages live (`importlib.util.find_spec`, which does not import them).
    static func locatePythonPackages(_ packages: [String]) -> [String: String] {
        let list = packages.map { "'\($0)'" }.joined(separator: ",")
        let script = """
            import importlib.util as u, os
            for n in [\(list)]:
                s = u.find_spec(n)
                if s and s.origin: print(n + '\\t' + os.path.dirname(s.origin))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return [:] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var out: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1)
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }
}
