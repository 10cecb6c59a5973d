import Foundation

/// A YAML mapping read key by key, so each key is spelt once, where it is read: every
/// accessor records the key it asks for, and `finish()` refuses any key of the file that
/// nothing asked for, with a did-you-mean among the keys that were (and, recursively, in
/// every section taken from this one). Types and ranges are checked as they are read, and
/// every complaint names the file, the line and the key path.
public final class ConfigSection {
    public let owner: ConfigValue
    private let entries: [(key: String, value: ConfigValue)]
    private var asked: [String] = []
    private var children: [ConfigSection] = []

    private init(owner: ConfigValue, entries: [(key: String, value: ConfigValue)]) {
        self.owner = owner
        self.entries = entries
    }

    /// `value` must be a mapping (or null: an empty section).
    public convenience init(_ value: ConfigValue) throws {
        if value.isNull { self.init(owner: value, entries: []); return }
        guard case .mapping(let m) = value.node else { throw value.error("expected a mapping of keys, found \(value.kindName)") }
        var entries: [(key: String, value: ConfigValue)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw value.error("keys must be plain words") }
            let child = ConfigValue(node: v, file: value.file, keyPath: value.keyPath.isEmpty ? ks.string : "\(value.keyPath).\(ks.string)")
            guard !entries.contains(where: { $0.key == ks.string }) else { throw child.error("key '\(ks.string)' appears twice") }
            entries.append((ks.string, child))
        }
        self.init(owner: value, entries: entries)
    }

    /// The value at `key` (nil when absent or null); records that `key` is known here.
    public func value(_ key: String) -> ConfigValue? {
        if !asked.contains(key) { asked.append(key) }
        return entries.first { $0.key == key && !$0.value.isNull }?.value
    }

    /// Whether the file gives `key` (without making it known).
    public func has(_ key: String) -> Bool { entries.contains { $0.key == key && !$0.value.isNull } }

    public func string(_ key: String) throws -> String? { try value(key)?.string() }
    public func int(_ key: String, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int? { try value(key)?.int(in: range) }
    public func double(_ key: String, in range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude) throws -> Double? {
        try value(key)?.double(in: range)
    }
    public func bool(_ key: String) throws -> Bool? { try value(key)?.bool() }
    public func strings(_ key: String) throws -> [String]? { try value(key)?.strings() }
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        try value(key)?.choice(type)
    }

    /// The nested mapping at `key` (an empty one when absent), finished with this one.
    public func section(_ key: String) throws -> ConfigSection {
        // An absent section has no keys; its errors point at this mapping.
        let child = try value(key).map(ConfigSection.init) ?? ConfigSection(owner: owner, entries: [])
        children.append(child)
        return child
    }

    public func required(_ key: String, hint: String? = nil) throws -> ConfigValue {
        guard let v = value(key) else {
            throw owner.error("missing key '\(key)'\(owner.keyPath.isEmpty ? "" : " in \(owner.keyPath)")", fix: hint)
        }
        return v
    }

    /// Where to point an error about `key`: its value when present, else this mapping.
    public func at(_ key: String) -> ConfigValue { entries.first { $0.key == key }?.value ?? owner }

    /// Refuses every key nothing asked for, here and in the sections taken from here.
    public func finish() throws {
        for (key, child) in entries where !asked.contains(key) {
            let place = owner.keyPath.isEmpty ? "at the top level" : "in \(owner.keyPath)"
            let suggestion = closest(key, among: asked).map { " (did you mean '\($0)'?)" } ?? ""
            throw child.error("unknown key '\(key)' \(place)\(suggestion)", fix: "allowed keys here: \(asked.joined(separator: ", "))")
        }
        for c in children { try c.finish() }
    }
}
