import Foundation
import MoLASupport

/// How a parameter starts.
public enum Initializer: Equatable, Sendable {
    case zeros
    case ones
    /// PyTorch's default for convolutions and linear layers: uniform in ±gain·√(3/fanIn) with
    /// gain = √(2/(1+a²)); a = √5 gives ±1/√fanIn.
    case kaimingUniform(fanIn: Int, a: Float)
    /// Normal with standard deviation gain/√fan (He init for ReLU networks: gain √2, fan-out).
    case kaimingNormal(fan: Int, gain: Float)
    case uniform(bound: Float)
    /// These exact values (a small tensor with a designed start, as Cross-Stitch's units).
    case values([Float])
}

/// What a parameter is for, given when it is registered. Parameter counts, gradient
/// balancers, conflict probes and export read the role, never the name.
public enum ParameterRole: String, Codable, CaseIterable, Sendable {
    /// The backbone the tasks share (also each expert or column of the multi-backbone methods).
    case shared
    /// One task's own module (CGC's task experts, MTAN's attention): only its images reach it.
    case task
    /// A low-rank adapter: one task's ΔW, or one of those a router mixes per image.
    case adapter
    /// MoLA-Router's router (its CNN, head and TwD projection): every task's loss trains it,
    /// so balancers treat it as shared; tables count it apart.
    case router
    /// A task's gate over experts (MMoE, CGC, DSelect-k) or a Cross-Stitch mixing unit.
    case gate
    /// A task's classification head.
    case head

    /// Whether the tasks share it: gradient balancers combine the tasks' gradients of these
    /// and conflict probes compare them; every other parameter takes the plain sum.
    public var isShared: Bool { self == .shared || self == .router }
}

/// A handle on one tensor of a `ParameterStore`.
public struct ParameterRef: Hashable, Sendable {
    public let index: Int
    public let offset: Int
    public let count: Int
}

/// Every parameter of a model in one allocation, every gradient in a second of the same
/// layout: optimisers sweep them in one pass, checkpoints write them in one go, and a
/// data-parallel run would all-reduce the gradients in one call. Non-trainable buffers
/// (batch-norm running statistics) live here too, without gradients.
public final class ParameterStore {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public let initializer: Initializer
        /// Optimisers update it (false for buffers such as running averages).
        public let trainable: Bool
        /// Weight decay applies (false for biases and normalisation parameters, if wanted).
        public let decay: Bool
        public let role: ParameterRole
        public var count: Int { shape.reduce(1, *) }
    }

    public private(set) var entries: [Entry] = []
    public private(set) var count = 0
    /// The role of parameters registered without one (see `registering(as:_:)`).
    private var currentRole = ParameterRole.shared
    private var valueStorage: UnsafeMutablePointer<Float>?
    private var gradStorage: UnsafeMutablePointer<Float>?

    /// How the kernels of the layers registered here run.
    public let engine: Engine

    public init(engine: Engine = .default) { self.engine = engine }

    deinit {
        valueStorage?.deallocate()
        gradStorage?.deallocate()
    }

    /// Registers a tensor; call before `allocate`. Names must be unique. `role`: what it is
    /// for (nil: the role of the enclosing `registering(as:)`, else shared).
    @discardableResult
    public func add(_ name: String, shape: [Int], _ initializer: Initializer, trainable: Bool = true, decay: Bool = true,
                    role: ParameterRole? = nil) -> ParameterRef {
        precondition(valueStorage == nil, "parameters must be added before allocate()")
        precondition(!entries.contains { $0.name == name }, "duplicate parameter name \(name)")
        let e = Entry(name: name, shape: shape, offset: count, initializer: initializer, trainable: trainable, decay: decay,
                      role: role ?? currentRole)
        entries.append(e)
        count += e.count
        return ParameterRef(index: entries.count - 1, offset: e.offset, count: e.count)
    }

    /// Runs `body` (which builds layers) with `role` as the role of every parameter it
    /// registers without one of its own: a whole router network is `.router` this way.
    public func registering<T>(as role: ParameterRole, _ body: () throws -> T) rethrows -> T {
        let outer = currentRole
        currentRole = role
        defer { currentRole = outer }
        return try body()
    }

    /// The arena ranges of the trainable parameters whose role satisfies `filter`, in arena order.
    public func ranges(where filter: (ParameterRole) -> Bool) -> [(entry: Entry, range: Range<Int>)] {
        entries.filter { $0.trainable && filter($0.role) }.map { ($0, $0.offset..<($0.offset + $0.count)) }
    }

    /// Allocates and initialises every tensor. Each draws from its own random stream named
    /// after it, so adding a parameter does not change how the others start.
    public func allocate(seed: UInt64) {
        precondition(valueStorage == nil, "allocate() called twice")
        let v = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(1, count))
        let g = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(1, count))
        g.initialize(repeating: 0, count: max(1, count))
        for e in entries {
            var rng = RandomGenerator(seed: seed, stream: e.name.utf8.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 })
            let p = v + e.offset
            switch e.initializer {
            case .zeros: p.initialize(repeating: 0, count: e.count)
            case .ones: p.initialize(repeating: 1, count: e.count)
            case .values(let v):
                precondition(v.count == e.count, "\(e.name): \(v.count) initial values for \(e.count) elements")
                v.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: e.count) }
            case .kaimingUniform(let fanIn, let a):
                let bound = (2 / (1 + a * a)).squareRoot() * (3 / Float(max(1, fanIn))).squareRoot()
                for i in 0..<e.count { p[i] = rng.uniform(-bound, bound) }
            case .kaimingNormal(let fan, let gain):
                let std = gain / Float(max(1, fan)).squareRoot()
                for i in 0..<e.count { p[i] = rng.normal() * std }
            case .uniform(let bound):
                for i in 0..<e.count { p[i] = rng.uniform(-bound, bound) }
            }
        }
        valueStorage = v
        gradStorage = g
    }

    public var values: UnsafeMutablePointer<Float> {
        guard let valueStorage else { preconditionFailure("ParameterStore.allocate() has not been called") }
        return valueStorage
    }

    public var gradients: UnsafeMutablePointer<Float> {
        guard let gradStorage else { preconditionFailure("ParameterStore.allocate() has not been called") }
        return gradStorage
    }

    public func value(_ p: ParameterRef) -> UnsafeMutablePointer<Float> { values + p.offset }
    public func gradient(_ p: ParameterRef) -> UnsafeMutablePointer<Float> { gradients + p.offset }
    public func entry(_ p: ParameterRef) -> Entry { entries[p.index] }
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    public func zeroGradients() { gradients.update(repeating: 0, count: count) }

    /// Number of trainable values whose names satisfy `filter`.
    public func trainableCount(where filter: (String) -> Bool = { _ in true }) -> Int {
        entries.filter { $0.trainable && filter($0.name) }.reduce(0) { $0 + $1.count }
    }

    /// True when every value and gradient is finite.
    public var isFinite: Bool {
        for i in 0..<count where !values[i].isFinite || !gradients[i].isFinite { return false }
        return true
    }
}
