import CZlib
import Foundation
import MoLASupport

/// Reads the members of a zip archive (as `numpy.savez` writes: stored or deflated,
/// zip64 extensions allowed) from memory, usually a memory-mapped file.
public struct ZipArchive {
    public struct Member {
        public var name: String
        public var method: UInt16          // 0 stored, 8 deflate
        public var crc32: UInt32
        public var compressedSize: Int
        public var size: Int
        public var localHeaderOffset: Int
        /// Offset of the member's data, after its local header.
        public var dataOffset: Int
    }

    public let path: String
    public let data: Data
    public private(set) var members: [Member] = []

    /// Opens `path` memory-mapped and reads its central directory.
    public init(path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw DataError(file: path, "cannot read file: \(error.localizedDescription)",
                            fix: "check that the file exists and is readable")
        }
        try self.init(path: path, data: data)
    }

    public init(path: String, data: Data) throws {
        self.path = path
        self.data = data
        members = try data.withUnsafeBytes { try Self.readDirectory($0, path: path) }
    }

    public func member(_ name: String) -> Member? { members.first { $0.name == name } }

    func damaged(_ what: String) -> DataError {
        DataError(file: path, "not a readable zip/npz archive: \(what)",
                  fix: "the file is truncated or corrupt; copy or download it again")
    }

    static func readDirectory(_ b: UnsafeRawBufferPointer, path: String) throws -> [Member] {
        func fail(_ what: String) -> DataError {
            DataError(file: path, "not a readable zip/npz archive: \(what)",
                      fix: "the file is truncated or corrupt; copy or download it again")
        }
        func u16(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian) }
        func u32(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian) }
        func u64(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian) }
        guard b.count >= 22 else { throw fail("only \(b.count) bytes") }
        // The end-of-central-directory record sits at the end, before a comment of < 64 KiB.
        var eocd = -1
        var o = b.count - 22
        while o >= max(0, b.count - 22 - 65535) {
            if u32(o) == 0x0605_4b50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record (file truncated?)") }
        var count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16)
        if eocd >= 20, u32(eocd - 20) == 0x0706_4b50 {  // zip64 locator
            let z = u64(eocd - 12)
            guard z >= 0, z + 56 <= b.count, u32(z) == 0x0606_4b50 else { throw fail("bad zip64 directory") }
            count = u64(z + 32); cdSize = u64(z + 40); cdOffset = u64(z + 48)
        }
        guard cdOffset >= 0, cdSize >= 0, cdOffset + cdSize <= b.count else {
            throw fail("central directory lies outside the file (truncated?)")
        }
        var members: [Member] = []
        var p = cdOffset
        for _ in 0..<count {
            guard p + 46 <= b.count, u32(p) == 0x0201_4b50 else { throw fail("bad central directory entry") }
            let method = UInt16(u16(p + 10))
            let crc = UInt32(u32(p + 16))
            var csize = u32(p + 20), usize = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLen + extraLen <= b.count else { throw fail("bad central directory entry") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLen)]), as: UTF8.self)
            // zip64 extra field: 64-bit values for exactly the fields saturated above.
            var e = p + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if usize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { usize = u64(q); q += 8 }
                    if csize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { csize = u64(q); q += 8 }
                    if local == 0xFFFF_FFFF, q + 8 <= e + 4 + len { local = u64(q); q += 8 }
                }
                e += 4 + len
            }
            guard local >= 0, local + 30 <= b.count, u32(local) == 0x0403_4b50 else {
                throw fail("member \(name): bad local header")
            }
            let dataOffset = local + 30 + u16(local + 26) + u16(local + 28)
            guard csize >= 0, usize >= 0, dataOffset + csize <= b.count else {
                throw fail("member \(name) runs past the end of the file (truncated?)")
            }
            guard method == 0 || method == 8 else {
                throw DataError(file: path, location: "member \(name)",
                                "compression method \(method) is not supported (only stored and deflate)",
                                fix: "re-save the archive with numpy.savez or numpy.savez_compressed")
            }
            // What a member may claim: its stored bytes, or what deflate can make of them.
            guard method == 0 ? usize == csize : Limits.inflatable(usize, from: csize) else {
                throw fail("member \(name) claims \(usize) bytes from \(csize) compressed: more than its data can hold")
            }
            members.append(Member(name: name, method: method, crc32: crc, compressedSize: csize, size: usize,
                                  localHeaderOffset: local, dataOffset: dataOffset))
            p += 46 + nameLen + extraLen + commentLen
        }
        return members
    }

    /// Inflates a member, writing bytes `skip..<size` to `output` and returning the first
    /// `skip` bytes; checks the CRC-32. `chunkSizes`/`chunkSize` describe independent deflate
    /// chunks (our shards record them) so both cores can inflate one member.
    @discardableResult
    public func extract(_ m: Member, skip: Int = 0, into output: UnsafeMutableRawBufferPointer,
                        chunkSizes: [Int]? = nil, chunkSize: Int = 0) throws -> [UInt8] {
        guard skip <= m.size, output.count == m.size - skip else {
            throw damaged("member \(m.name) holds \(m.size) bytes, expected \(output.count + skip)")
        }
        let (head, crc): ([UInt8], UInt32) = try data.withUnsafeBytes { b in
            let src = UnsafeRawBufferPointer(rebasing: b[m.dataOffset..<(m.dataOffset + m.compressedSize)])
            if m.method == 0 {
                guard m.compressedSize == m.size else { throw damaged("member \(m.name): stored size mismatch") }
                output.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[skip...]))
                return (Array(src[0..<skip]), Zlib.crc32(src))
            }
            do {
                return try Zlib.inflateRaw(src, size: m.size, skip: skip, into: output, chunkSizes: chunkSizes, chunkSize: chunkSize)
            } catch {
                throw DataError(file: path, location: "member \(m.name)", "cannot inflate: \(error)",
                                fix: "the file is truncated or corrupt; copy or download it again")
            }
        }
        guard crc == m.crc32 else {
            throw DataError(file: path, location: "member \(m.name)",
                            "CRC-32 mismatch (stored \(hex(m.crc32)), computed \(hex(crc)))",
                            fix: "the file is corrupt; copy or download it again")
        }
        return head
    }

    public func extract(_ m: Member) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: m.size)
        _ = try out.withUnsafeMutableBytes { try extract(m, into: $0) }
        return out
    }

    /// A sequential reader over one member, for members too large to inflate at once.
    public func stream(_ m: Member) -> ZipMemberStream { ZipMemberStream(archive: self, member: m) }
}

func hex(_ v: UInt32) -> String { String(format: "%08x", v) }

/// Reads a zip member front to back in pieces, checking the CRC when the end is reached.
public final class ZipMemberStream {
    let archive: ZipArchive
    let member: ZipArchive.Member
    private var stream = z_stream()
    private var consumed = 0
    public private(set) var produced = 0
    private var crc: UInt32 = 0

    init(archive: ZipArchive, member: ZipArchive.Member) {
        self.archive = archive
        self.member = member
        if member.method == 8 {
            _ = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        }
    }

    deinit { if member.method == 8 { inflateEnd(&stream) } }

    func fail(_ what: String) -> DataError {
        DataError(file: archive.path, location: "member \(member.name)", what,
                  fix: "the file is truncated or corrupt; copy or download it again")
    }

    /// Fills `out` completely with the member's next bytes.
    public func read(into out: UnsafeMutableRawBufferPointer) throws {
        guard produced + out.count <= member.size else { throw fail("read past the end of the member") }
        try archive.data.withUnsafeBytes { b in
            let src = b.baseAddress!.advanced(by: member.dataOffset)
            if member.method == 0 {
                out.copyMemory(from: UnsafeRawBufferPointer(start: src + produced, count: out.count))
            } else {
                var filled = 0
                while filled < out.count {
                    stream.next_in = UnsafeMutablePointer(mutating: (src + consumed).assumingMemoryBound(to: UInt8.self))
                    stream.avail_in = UInt32(min(member.compressedSize - consumed, Int(UInt32.max)))
                    stream.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self) + filled
                    stream.avail_out = UInt32(min(out.count - filled, Int(UInt32.max)))
                    let (bIn, bOut) = (stream.total_in, stream.total_out)
                    let code = inflate(&stream, Z_SYNC_FLUSH)
                    consumed += Int(stream.total_in - bIn)
                    filled += Int(stream.total_out - bOut)
                    if code == Z_STREAM_END, filled < out.count { throw fail("member data ends early") }
                    if code == Z_OK || code == Z_STREAM_END { continue }
                    if code == Z_BUF_ERROR { throw fail("compressed data ends early (truncated)") }
                    throw fail("cannot inflate: \(Zlib.message(code, stream))")
                }
            }
        }
        crc = Zlib.crc32(UnsafeRawBufferPointer(out), previous: crc)
        produced += out.count
        if produced == member.size, crc != member.crc32 {
            throw fail("CRC-32 mismatch (stored \(hex(member.crc32)), computed \(hex(crc)))")
        }
    }
}

/// Writes a zip archive deterministically and straight to disk: members in the order
/// added, fixed timestamps (1980-01-01), no extra fields, so the same contents always give
/// the same bytes. The file is written under a temporary name, hashed (SHA-256) as it is
/// written, and renamed into place by `finish`. Members over 4 GiB are refused (shards are
/// ~64 MiB).
public final class ZipFileWriter {
    public let path: String
    private let tmp: String
    private let fd: Int32
    private var hasher = Hash.Stream()
    private var written = 0
    private var central: [UInt8] = []
    private var count = 0

    public init(path: String) throws {
        self.path = path
        tmp = FileIO.temporaryName(for: path)
        fd = Foundation.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw DataError(file: path, "cannot create: \(String(cString: strerror(errno)))",
                            fix: "check that the folder exists and is writable")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        unlink(tmp)  // no-op once renamed
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        do { try DiskSpace.write(fd, bytes, path: path, what: URL(fileURLWithPath: path).lastPathComponent) } catch var e as DiskFullError {
            e.needed = written + bytes.count  // this file so far, at the least
            throw e
        }
        hasher.update(UnsafeRawBufferPointer(bytes))
        written += bytes.count
    }

    private func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Adds a member whose data is already raw-deflated (`method` 8) or stored (0), given
    /// as consecutive pieces.
    public func add(name: String, method: UInt16, crc32: UInt32, size: Int, pieces: [[UInt8]]) throws {
        let compressed = pieces.reduce(0) { $0 + $1.count }
        precondition(size < 0xFFFF_FFFF && compressed < 0xFFFF_FFFF && written < 0xFFFF_FFFF, "zip member too large")
        let offset = written
        let nameBytes = Array(name.utf8)
        func header(central: Bool) -> [UInt8] {
            var h: [UInt8] = []
            h.le32(central ? 0x0201_4b50 : 0x0403_4b50)
            if central { h.le16(0x0314) }  // made by: unix, zip 2.0
            h.le16(20)                       // version needed
            h.le16(0)                        // flags
            h.le16(UInt32(method))
            h.le16(0); h.le16(0x21)          // time 00:00, date 1980-01-01
            h.le32(crc32)
            h.le32(UInt32(compressed)); h.le32(UInt32(size))
            h.le16(UInt32(nameBytes.count)); h.le16(0)
            if central {
                h.le16(0); h.le16(0); h.le16(0)  // comment, disk, internal attributes
                h.le32(0o100644 << 16)           // external: regular file rw-r--r--
                h.le32(UInt32(offset))
            }
            h.append(contentsOf: nameBytes)
            return h
        }
        let local = header(central: false)
        do {
            try write(local)
            for p in pieces { try write(p) }
        } catch var e as DiskFullError {
            e.needed = offset + local.count + compressed  // this file up to the member's end, at the least
            throw e
        }
        central += header(central: true)
        count += 1
    }

    /// Writes the central directory and end record, flushes and renames the file into
    /// place; returns its size and SHA-256.
    public func finish() throws -> (bytes: Int, sha256: String) {
        let cdOffset = written
        var end = central
        end.le32(0x0605_4b50)
        end.le16(0); end.le16(0)
        end.le16(UInt32(count)); end.le16(UInt32(count))
        end.le32(UInt32(central.count)); end.le32(UInt32(cdOffset))
        end.le16(0)
        try write(end)
        guard fsync(fd) == 0 else { throw DataError(file: path, "cannot flush to disk: \(String(cString: strerror(errno)))") }
        try FileIO.rename(tmp, path)
        return (written, hasher.finalize())
    }
}

extension Array where Element == UInt8 {
    mutating func le16(_ v: UInt32) { append(UInt8(v & 0xff)); append(UInt8((v >> 8) & 0xff)) }
    mutating func le32(_ v: UInt32) { le16(v & 0xffff); le16(v >> 16) }
}
