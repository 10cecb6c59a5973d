/// A value listed once in a registry and named in configs (methods, balancers): looked up by
/// name, listed in help, encoded as its name, equal when the names are.
public protocol Registered: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The config's value for it.
    var name: String { get }
    /// One line of `mola-train --help`.
    var summary: String { get }
    /// Every registered value, in the order help (and, for methods, tables) list them.
    static var all: [Self] { get }
}

extension Registered {
    public var description: String { name }

    public static func named(_ name: String) -> Self? { all.first { $0.name == name } }

    /// Help's list, one line each.
    public static var helpList: String { all.map { "  " + $0.name.padding(toLength: 14, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n") }

    public static func == (a: Self, b: Self) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let name = try c.decode(String.self)
        guard let v = Self.named(name) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown name '\(name)' (this build knows \(Self.all.map(\.name).joined(separator: ", ")))")
        }
        self = v
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}
