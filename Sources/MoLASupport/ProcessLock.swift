import Foundation

/// One process at a time in a folder: the claim `mola-prep ingest` holds on its dataset
/// folder, `mola-train run` on its run folder and `mola-pipeline run` on its pipeline.
///
/// The claim is a `flock` on a hidden file beside the target (`.NAME.in-use`; beside, not
/// inside, because ingest swaps its folder by rename and `--fresh` deletes a run folder).
/// The kernel drops a flock when its process ends, however it ends (`kill -9`, a lost
/// node's NFS lease), so a lock left by a dead process is simply taken over; the file's
/// text — pid, host, command, start — only serves the message the next process prints.
/// A clean release unlinks the file; acquiring checks that the file it locked is still the
/// one at the path, so an unlink between another process's open and flock cannot give two
/// holders.
public final class ProcessLock: @unchecked Sendable {  // immutable after init; the fd is closed once
    /// Who holds (or last held) a lock, as its file records it.
    public struct Holder: Codable, Equatable, Sendable, CustomStringConvertible {
        public var pid: Int32
        public var host: String
        public var command: String
        public var since: String

        public var description: String { "pid \(pid) on host \(host) (\(command), since \(since))" }

        static func current() -> Holder {
            let args = CommandLine.arguments
            let tool = URL(fileURLWithPath: args.first ?? "?").lastPathComponent
            let command = ([tool] + args.dropFirst().prefix(3)).joined(separator: " ") + (args.count > 4 ? " …" : "")
            return Holder(pid: getpid(), host: ProcessInfo.processInfo.hostName, command: command,
                          since: ISO8601DateFormatter().string(from: Date()))
        }
    }

    /// What to do when another process holds the lock.
    public enum Contention: Sendable {
        /// Throw an error naming the holder.
        case refuse
        /// Wait until it is released; `waiting` is told once, with the holder. `stop` is
        /// asked while waiting (a signal handler's flag: Ctrl-C or scancel must still work).
        case wait(waiting: @Sendable (Holder?) -> Void, stop: @Sendable () -> Bool = { false })

        /// The tools' `--wait` flag: wait, saying on standard error whom for, or refuse.
        public static func fromFlag(wait: Bool, target: String, stop: @escaping @Sendable () -> Bool = { false }) -> Contention {
            guard wait else { return .refuse }
            return .wait(waiting: { holder in
                let who = holder.map { "\($0)" } ?? "another process"
                FileHandle.standardError.write(Data("waiting for \(who) to finish with \(target)\n".utf8))
            }, stop: stop)
        }
    }

    /// The lock file that guards `target`.
    public static func path(for target: String) -> String {
        let url = URL(fileURLWithPath: target).standardized
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).in-use").path
    }

    public let path: String
    /// The holder whose lock this process took over (it had died without releasing), if any.
    public let tookOverFrom: Holder?
    private let fd: Int32

    /// Claims `target` for this process, or refuses / waits as `contention` says.
    ///
    /// - Parameters:
    ///   - what: the target as the messages name it ("the dataset folder").
    ///   - log: told when the lock of a process that died holding it is taken over.
    public init(_ target: String, what: String, contention: Contention = .refuse,
                log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws {
        let path = Self.path(for: target)
        self.path = path
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        var told = false
        let started = Date()
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw DataError(file: path, "cannot create the lock file for \(what): \(String(cString: strerror(errno)))",
                                fix: "check that \(parent) exists and is writable")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                guard code == EWOULDBLOCK || code == EAGAIN else {
                    close(fd)
                    throw DataError(file: path, "cannot lock \(what): \(String(cString: strerror(code)))",
                                    fix: "the file system must support flock (local disks and NFS do)")
                }
                let holder = Self.readHolder(fd)
                close(fd)
                let who = holder.map { "\($0)" } ?? "another process"
                switch contention {
                case .refuse:
                    // A moment's grace: a holder may be releasing, or `holder(of:)` probing.
                    if Date().timeIntervalSince(started) < 0.3 { usleep(20_000); continue }
                    throw DataError(file: target, "\(what) is in use by \(who)",
                                    fix: "wait for it to finish (or rerun with --wait)" + (holder.map { ", or stop it: kill \($0.pid) on \($0.host)" } ?? ""))
                case .wait(let waiting, let stop):
                    if !told { waiting(holder); told = true }
                    if stop() { throw DataError(file: target, "stopped while waiting for \(what), in use by \(who)") }
                    usleep(100_000)
                    continue
                }
            }
            // Still the file at `path`? A holder that released in between unlinked it.
            var mine = stat(), there = stat()
            guard fstat(fd, &mine) == 0, stat(path, &there) == 0, mine.st_ino == there.st_ino, mine.st_dev == there.st_dev else {
                close(fd)
                continue
            }
            let previous = Self.readHolder(fd)
            self.fd = fd
            self.tookOverFrom = previous.flatMap { $0.pid == getpid() && $0.host == ProcessInfo.processInfo.hostName ? nil : $0 }
            if let dead = tookOverFrom { log("note: took over \(what) from \(dead), which ended without releasing it") }
            let text = Array((String(decoding: try JSONEncoder().encode(Holder.current()), as: UTF8.self) + "\n").utf8)
            ftruncate(fd, 0)
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            return
        }
    }

    deinit {
        unlink(path)  // while still locked: a waiter then finds its file gone and retries
        close(fd)
    }

    /// Who holds the lock at `target` now, or nil when nobody does.
    public static func holder(of target: String) -> Holder? {
        let fd = open(path(for: target), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { flock(fd, LOCK_UN); return nil }
        return readHolder(fd)
    }

    private static func readHolder(_ fd: Int32) -> Holder? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return try? JSONDecoder().decode(Holder.self, from: Data(buffer.prefix(n)))
    }
}
