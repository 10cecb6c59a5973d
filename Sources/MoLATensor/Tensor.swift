/// A contiguous Float32 array with a shape. Images are channels-last (N×H×W×C): a
/// convolution computed as im2col·W then produces its output in place, with no transposes
/// (NCHW would need one per layer and direction).
///
/// Value semantics: copies share storage until one is written (copy-on-write), so passing
/// tensors around costs nothing. Kernels work on raw pointers; `pointer` reads and
/// `mutablePointer()` writes in place.
public struct Tensor: CustomStringConvertible {
    public private(set) var shape: [Int]
    private var storage: Storage

    final class Storage {
        let pointer: UnsafeMutablePointer<Float>
        let count: Int
        init(count: Int) {
            self.count = count
            pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(1, count))
        }
        deinit { pointer.deallocate() }
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, repeating: 0)
    }

    public init(shape: [Int], repeating value: Float) {
        precondition(shape.allSatisfy { $0 >= 0 })
        self.shape = shape
        storage = Storage(count: shape.reduce(1, *))
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) values")
        self.shape = shape
        storage = Storage(count: scalars.count)
        scalars.withUnsafeBufferPointer { storage.pointer.initialize(from: $0.baseAddress!, count: scalars.count) }
    }

    /// A tensor whose contents the caller fills (through `mutablePointer()`) before reading.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        storage = Storage(count: shape.reduce(1, *))
    }

    public var count: Int { storage.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }
    public var pointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    /// Write access; copies the storage first if another tensor shares it.
    public mutating func mutablePointer() -> UnsafeMutablePointer<Float> {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Storage(count: storage.count)
            copy.pointer.initialize(from: storage.pointer, count: storage.count)
            storage = copy
        }
        return storage.pointer
    }

    public subscript(_ i: Int) -> Float {
        get { storage.pointer[i] }
        set { mutablePointer()[i] = newValue }
    }

    /// The same values with another shape of equal size (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Sets every value to zero, in place.
    public mutating func zero() { mutablePointer().update(repeating: 0, count: count) }

    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 8 ? ", …" : "")]"
    }
}
