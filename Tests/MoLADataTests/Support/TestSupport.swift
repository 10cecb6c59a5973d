import CZlib
import Foundation
import Testing

/// A temporary folder removed when the value goes away.
final class TempDir {
    let path: String
    init(_ label: String = "mola") {
        path = NSTemporaryDirectory() + "/\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = file(name)
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}

/// The package root (tests use the shipped manifests).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

struct CommandResult { var status: Int32; var stdout: String; var stderr: String }

/// Runs a program and collects its output.
@discardableResult
func run(_ program: String, _ args: [String], environment: [String: String] = [:], cwd: String? = nil) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [program] + args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// Runs a Python script (numpy available) and returns its standard output; a missing
/// python3 or numpy fails the test with the fix.
func python(_ script: String, environment: [String: String] = [:]) throws -> String {
    let r = try run("python3", ["-c", script], environment: environment)
    if r.status != 0 {
        Issue.record("python3 failed (run scripts/setup.sh to install numpy, mlxtend, scikit-learn):\n\(r.stderr)")
    }
    return r.stdout
}

/// A built executable of this package, next to the test bundle.
func executable(_ name: String) -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let p = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    for config in ["release", "debug"] {
        let p = packageRoot + "/.build/\(config)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    fatalError("\(name) is not built; run `swift build` first")
}

func zlibCompress(_ data: [UInt8]) -> [UInt8] {
    var len = compressBound(UInt(data.count))
    var out = [UInt8](repeating: 0, count: Int(len))
    _ = compress(&out, &len, data, UInt(data.count))
    return Array(out[0..<Int(len)])
}

func gzip(_ data: [UInt8]) -> [UInt8] { deflateStream(data, level: 6, strategy: Z_DEFAULT_STRATEGY, windowBits: 15 + 16) }

/// Encodes PNGs of any colour type, bit depth and interlacing, for decoder tests:
/// libpng's own writer makes only 8/16-bit non-interlaced files.
enum PNGFixture {
    /// `samples`: row-major, `channels(colorType)` samples per pixel, each < 2^bitDepth
    /// (palette indices for colour type 3).
    static func encode(width: Int, height: Int, colorType: UInt8, bitDepth: UInt8, interlaced: Bool = false,
                       samples: [Int], palette: [(UInt8, UInt8, UInt8)] = [], transparency: [UInt8] = []) -> [UInt8] {
        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(colorType)]!
        precondition(samples.count == width * height * channels)
        func scanlines(_ xs: [Int], _ ys: [Int]) -> [UInt8] {
            var out: [UInt8] = []
            for y in ys {
                out.append(0)  // filter: none
                var bits: [Int] = []
                for x in xs { for c in 0..<channels { bits.append(samples[(y * width + x) * channels + c]) } }
                if bitDepth == 16 {
                    for v in bits { out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xff)) }
                } else if bitDepth == 8 {
                    out += bits.map(UInt8.init)
                } else {
                    let d = Int(bitDepth), perByte = 8 / d
                    var i = 0
                    while i < bits.count {
                        var byte = 0
                        for k in 0..<perByte { byte |= (i + k < bits.count ? bits[i + k] : 0) << (8 - d * (k + 1)) }
                        out.append(UInt8(byte)); i += perByte
                    }
                }
            }
            return out
        }
        var raw: [UInt8] = []
        if interlaced {
            let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            for (x0, y0, dx, dy) in passes {
                let xs = Array(stride(from: x0, to: width, by: dx)), ys = Array(stride(from: y0, to: height, by: dy))
                if !xs.isEmpty && !ys.isEmpty { raw += scanlines(xs, ys) }
            }
        } else {
            raw = scanlines(Array(0..<width), Array(0..<height))
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            let t = Array(type.utf8)
            png += be32(data.count) + t + data
            let crc = (t + data).withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
            png += be32(Int(crc))
        }
        chunk("IHDR", be32(width) + be32(height) + [bitDepth, colorType, 0, 0, interlaced ? 1 : 0])
        if !palette.isEmpty { chunk("PLTE", palette.flatMap { [$0.0, $0.1, $0.2] }) }
        if !transparency.isEmpty { chunk("tRNS", transparency) }
        chunk("IDAT", zlibCompress(raw))
        chunk("IEND", [])
        return png
    }

    static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
}

/// Raw deflate with any zlib level and strategy (Z_FIXED, Z_HUFFMAN_ONLY, Z_RLE, …).
func rawDeflate(_ data: [UInt8], level: Int32, strategy: Int32) -> [UInt8] {
    deflateStream(data, level: level, strategy: strategy, windowBits: -15)
}

/// zlib's deflate in one call: `windowBits` -15 for raw, 31 for gzip.
func deflateStream(_ data: [UInt8], level: Int32, strategy: Int32, windowBits: Int32) -> [UInt8] {
    var s = z_stream()
    deflateInit2_(&s, level, Z_DEFLATED, windowBits, 8, strategy, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    defer { deflateEnd(&s) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, UInt(data.count))) + 64)
    var input = data
    let n: Int = input.withUnsafeMutableBufferPointer { i in
        out.withUnsafeMutableBufferPointer { o in
            s.next_in = i.baseAddress; s.avail_in = UInt32(i.count)
            s.next_out = o.baseAddress; s.avail_out = UInt32(o.count)
            deflate(&s, Z_FINISH)
            return Int(s.total_out)
        }
    }
    return Array(out[0..<n])
}

/// zlib's own verdict on a raw deflate stream meant to hold exactly `size` bytes: the
/// bytes, or nil when zlib reports an error, stops short, or the stream holds more.
func zlibInflateRaw(_ stream: [UInt8], size: Int) -> [UInt8]? {
    var s = z_stream()
    inflateInit2_(&s, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    defer { inflateEnd(&s) }
    var out = [UInt8](repeating: 0, count: size + 1)
    var input = stream
    let (code, produced): (Int32, Int) = input.withUnsafeMutableBufferPointer { i in
        out.withUnsafeMutableBufferPointer { o in
            s.next_in = i.baseAddress; s.avail_in = UInt32(i.count)
            s.next_out = o.baseAddress; s.avail_out = UInt32(o.count)
            let r = inflate(&s, Z_FINISH)
            return (r, Int(s.total_out))
        }
    }
    return code == Z_STREAM_END && produced == size ? Array(out.prefix(size)) : nil
}

/// A child process's outcome with what it cost: wall time and peak resident memory.
///
/// The peak comes from GNU time, which forks the program from its own small process: a
/// child spawned straight from this test process would report this process's peak (Linux
/// carries the high-water mark of the memory a child started with across its exec).
struct MeasuredRun { var status: Int32; var stderr: String; var seconds: Double; var peakKB: Int }

func measured(_ program: String, _ args: [String]) throws -> MeasuredRun {
    let errFile = NSTemporaryDirectory() + "/measured-\(getpid())-\(UUID().uuidString.prefix(8)).err"
    defer { unlink(errFile) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, errFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let memFile = errFile + ".kb"
    defer { unlink(memFile) }
    let time = "/usr/bin/time"
    let argv = ([time, "-q", "-f", "%M", "-o", memFile, program] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let start = DispatchTime.now().uptimeNanoseconds
    guard posix_spawn(&pid, time, &actions, nil, argv, environ) == 0 else { throw CocoaError(.executableNotLoadable) }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let kb = Int(((try? String(contentsOfFile: memFile, encoding: .utf8)) ?? "").split(separator: "\n").last ?? "")
    guard let kb else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: memFile]) }
    return MeasuredRun(status: exit, stderr: (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "", seconds: seconds, peakKB: kb)
}
