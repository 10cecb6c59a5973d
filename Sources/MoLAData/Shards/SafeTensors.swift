import Foundation
import MoLASupport

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`
/// padded with spaces to a multiple of 8, then the raw little-endian tensor bytes.
/// We write and read float32 tensors, and float64 ones where a caller asks for them (a
/// balancer's state, which a resumed run needs to the last bit).
public enum SafeTensors {
    public struct Tensor: Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        /// A float64 tensor's values (nil: float32, in `values`, which is then empty).
        public var float64: [Double]?
        public init(name: String, shape: [Int], values: [Float]) { self.name = name; self.shape = shape; self.values = values }
        public init(name: String, shape: [Int], float64: [Double]) { self.name = name; self.shape = shape; values = []; self.float64 = float64 }
        var byteCount: Int { float64.map { $0.count * 8 } ?? values.count * 4 }
    }

    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        var header = "{"
        var offset = 0
        var parts: [String] = []
        if !metadata.isEmpty {
            let meta = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(meta)}")
        }
        for t in tensors {
            let bytes = t.byteCount
            parts.append("\(jsonString(t.name)):{\"dtype\":\"\(t.float64 == nil ? "F32" : "F64")\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        while header.utf8.count % 8 != 0 { header += " " }
        var out = [UInt8]()
        out.reserveCapacity(8 + header.utf8.count + offset)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header.utf8)
        for t in tensors {  // x86-64 and arm64 are little-endian
            if let d = t.float64 { d.withUnsafeBytes { out.append(contentsOf: $0) } } else { t.values.withUnsafeBytes { out.append(contentsOf: $0) } }
        }
        return out
    }

    /// Parses a file; any inconsistency is an error naming the file. Entries `skipping`
    /// accepts are left out unread (torchvision's integer `num_batches_tracked`). float64
    /// entries only with `float64` (else they are an error: callers read `values`).
    public static func decode(_ bytes: [UInt8], file: String, skipping: (String) -> Bool = { _ in false }, float64 allowed: Bool = false) throws
        -> (tensors: [Tensor], metadata: [String: String]) {
        func bad(_ why: String) -> DataError {
            DataError(file: file, "not a valid safetensors file: \(why)", fix: "the checkpoint is damaged; resume from another or start again")
        }
        guard bytes.count >= 8 else { throw bad("shorter than its 8-byte header length") }
        let declared = bytes[0..<8].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard declared > 0, declared <= UInt64(bytes.count - 8) else { throw bad("header length \(declared) exceeds the file") }
        let n = Int(declared)
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any] else { throw bad("header is not JSON") }
        let dataStart = 8 + n
        var tensors: [(Int, Tensor)] = []
        var metadata: [String: String] = [:]
        for (name, value) in obj {
            if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            if skipping(name) { continue }
            let dtype = (value as? [String: Any])?["dtype"] as? String
            let wide = allowed && dtype == "F64"
            guard let d = value as? [String: Any], dtype == "F32" || wide, let shape = d["shape"] as? [Int],
                  let offs = d["data_offsets"] as? [Int], offs.count == 2 else {
                throw bad("entry \(name) is not a \(allowed ? "float32 or float64" : "float32") tensor")
            }
            guard let count = Limits.product(shape), let size = Limits.product([count, wide ? 8 : 4]), offs[0] >= 0, offs[1] >= offs[0],
                  offs[1] <= bytes.count - dataStart, offs[1] - offs[0] == size else { throw bad("entry \(name) lies outside the file") }
            func read<T>(_: T.Type) -> [T] {
                [T](unsafeUninitializedCapacity: count) { buf, c in
                    bytes.withUnsafeBytes { src in
                        UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(dataStart + offs[0])..<(dataStart + offs[1])]))
                    }
                    c = count
                }
            }
            tensors.append((offs[0], wide ? Tensor(name: name, shape: shape, float64: read(Double.self))
                                          : Tensor(name: name, shape: shape, values: read(Float.self))))
        }
        return (tensors.sorted { $0.0 < $1.0 }.map(\.1), metadata)
    }

    static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
