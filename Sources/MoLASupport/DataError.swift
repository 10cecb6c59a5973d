/// What every error of the tools is: a message a person can act on — what went wrong,
/// where, and what to do. The executables print any of them as `error: <description>`
/// and exit with status 1; anything else is a bug and keeps Swift's own report.
public protocol MoLAError: Error, CustomStringConvertible, Sendable {}

/// An error about one input or output file, saying where and what to do about it.
///
/// Printed as `path[: location]: message` and, when known, `fix: …` on the next line, so the
/// user sees at once which file (and which row, member, key or shard) is wrong and how to
/// repair it.
public struct DataError: MoLAError, Equatable {
    public var file: String
    public var location: String?
    public var message: String
    public var fix: String?

    public init(file: String, location: String? = nil, _ message: String, fix: String? = nil) {
        self.file = file
        self.location = location
        self.message = message
        self.fix = fix
    }

    public var description: String {
        var s = file
        if let location { s += ": \(location)" }
        s += ": \(message)"
        if let fix { s += "\n  fix: \(fix)" }
        return s
    }

    /// The same error placed at a more specific location (e.g. a record inside a file).
    public func at(_ location: String) -> DataError {
        var e = self
        e.location = self.location.map { "\($0), \(location)" } ?? location
        return e
    }
}
