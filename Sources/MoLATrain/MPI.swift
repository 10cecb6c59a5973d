import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one file that knows MPI. OpenMPI's `libmpi.so.40` is loaded at run time (`dlopen`),
/// only when `mpirun` (or `srun` with OpenMPI's PMIx) started this process with more than
/// one rank: building and running single-process needs no MPI at all.
///
/// OpenMPI's ABI is used directly: handles are pointers to its exported globals
/// (`MPI_COMM_WORLD` is `&ompi_mpi_comm_world`, `MPI_FLOAT` is `&ompi_mpi_float`, …) and
/// `MPI_IN_PLACE` is `(void *) 1` — what mpi.h's macros expand to, and why Swift, which
/// cannot import those macros, needs no header here.
///
/// Unchecked Sendable: its handles are OpenMPI's immutable globals, and only the training
/// thread calls MPI (MPI_THREAD_FUNNELED), including through the batch-norm reducer.
public final class MPI: @unchecked Sendable {
    public let rank: Int
    public let size: Int

    typealias Handle = UnsafeMutableRawPointer
    private let comm: Handle, float: Handle, double: Handle, uint64: Handle, sum: Handle
    private let allreduce: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    private let bcast: @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    private let allgather: @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32
    private let barrierFunction: @convention(c) (Handle) -> Int32
    private let finalizeFunction: @convention(c) () -> Int32
    /// MPI_IN_PLACE, `(void *) 1` (a computed value: a pointer is not Sendable).
    private static var inPlace: UnsafeRawPointer? { UnsafeRawPointer(bitPattern: 1) }

    /// The world size `mpirun` announced to this process, or nil when it was not started by
    /// an MPI launcher.
    public static var launchedSize: Int? {
        let env = ProcessInfo.processInfo.environment
        return (env["OMPI_COMM_WORLD_SIZE"] ?? env["PMIX_SIZE"]).flatMap { Int($0) }
    }

    /// Joins the MPI job when this process is one of several ranks; nil when it runs alone.
    public static func startIfLaunched() throws -> MPI? {
        guard let n = launchedSize, n > 1 else { return nil }
        return try MPI(expectedSize: n)
    }

    private init(expectedSize: Int) throws {
        let names = ["libmpi.so.40", "libmpi.so"]
        guard let lib = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_GLOBAL) }).first else {
            throw TrainError(description: "started by mpirun with \(expectedSize) ranks, but OpenMPI's library cannot be loaded "
                             + "(\(String(cString: dlerror()))). Install it (apt-get install openmpi-bin libopenmpi3) on every node.")
        }
        func symbol<T>(_ name: String, as: T.Type) throws -> T {
            guard let p = dlsym(lib, name) else {
                throw TrainError(description: "libmpi lacks \(name): MoLA-Swift speaks OpenMPI's ABI (libmpi.so.40); is this another MPI?")
            }
            return unsafeBitCast(p, to: T.self)
        }
        func global(_ name: String) throws -> Handle {
            guard let p = dlsym(lib, name) else { throw TrainError(description: "libmpi lacks \(name): OpenMPI (libmpi.so.40) is required") }
            return p
        }
        comm = try global("ompi_mpi_comm_world")
        float = try global("ompi_mpi_float")
        double = try global("ompi_mpi_double")
        uint64 = try global("ompi_mpi_uint64_t")
        sum = try global("ompi_mpi_op_sum")
        allreduce = try symbol("MPI_Allreduce", as: type(of: allreduce))
        bcast = try symbol("MPI_Bcast", as: type(of: bcast))
        allgather = try symbol("MPI_Allgather", as: type(of: allgather))
        barrierFunction = try symbol("MPI_Barrier", as: type(of: barrierFunction))
        finalizeFunction = try symbol("MPI_Finalize", as: type(of: finalizeFunction))
        let initThread = try symbol("MPI_Init_thread", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32).self)
        let commRank = try symbol("MPI_Comm_rank", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self)
        let commSize = try symbol("MPI_Comm_size", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self)
        // MPI_THREAD_FUNNELED (1): only the main thread calls MPI; kernels' threads never do.
        var provided: Int32 = 0
        guard initThread(nil, nil, 1, &provided) == 0 else { throw TrainError(description: "MPI_Init_thread failed") }
        var r: Int32 = 0, s: Int32 = 0
        _ = commRank(comm, &r)
        _ = commSize(comm, &s)
        rank = Int(r)
        size = Int(s)
    }

    /// Element-wise sum over all ranks, in place (every rank ends with the same values).
    public func allReduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) { chunked(count) { allreduce(Self.inPlace, p + $0, Int32($1), float, sum, comm) } }
    func allReduceSum(_ p: UnsafeMutablePointer<Double>, count: Int) { chunked(count) { allreduce(Self.inPlace, p + $0, Int32($1), double, sum, comm) } }

    /// Element-wise sum over all ranks of a small array, through a buffer of our own. (Passing
    /// the array's storage from withUnsafeMutableBufferPointer straight to the library was
    /// not reliable in release builds: the summed values were sometimes not read back.)
    public func allReduceSum(_ values: inout [Double]) {
        let buffer = UnsafeMutablePointer<Double>.allocate(capacity: max(1, values.count))
        defer { buffer.deallocate() }
        buffer.initialize(from: values, count: values.count)
        allReduceSum(buffer, count: values.count)
        values = Array(UnsafeBufferPointer(start: buffer, count: values.count))
    }

    /// Rank `root`'s floats to every rank.
    public func broadcast(_ p: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) {
        chunked(count) { bcast(p + $0, Int32($1), float, Int32(root), comm) }
    }

    /// One value from every rank, in rank order.
    public func allGather(_ value: UInt64) -> [UInt64] {
        let buffer = UnsafeMutablePointer<UInt64>.allocate(capacity: size + 1)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0, count: size + 1)
        buffer[size] = value
        let rc = allgather(buffer + size, 1, uint64, buffer, 1, uint64, comm)
        precondition(rc == 0, "MPI_Allgather failed with code \(rc) on rank \(rank)")
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }

    public func barrier() { _ = barrierFunction(comm) }

    /// Leaves the job cleanly (call once, on every rank, after the last collective).
    public func finalize() { _ = finalizeFunction() }

    /// MPI counts are 32-bit: larger buffers go in pieces.
    private func chunked(_ count: Int, _ call: (Int, Int) -> Int32) {
        var lo = 0
        let step = Int(Int32.max)
        while lo < count {
            let n = min(step, count - lo)
            let rc = call(lo, n)
            precondition(rc == 0, "MPI collective failed with code \(rc) on rank \(rank)")
            lo += n
        }
    }
}
