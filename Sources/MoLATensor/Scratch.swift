import Foundation

/// Per-thread scratch memory for kernels, kept between calls.
///
/// Kernels need buffers (packed panels, im2col chunks) of up to a few MiB on every call.
/// Allocating them each time costs more than it seems: glibc serves blocks over 128 KiB
/// with mmap, and every munmap interrupts the other core to flush its TLB. Each thread
/// instead keeps a few numbered slots that grow as needed and are reused.
public enum Scratch {
    final class Slots {
        var buffers: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
        deinit { for b in buffers { b.pointer.deallocate() } }
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { raw in
            if let raw { Unmanaged<Slots>.fromOpaque(raw).release() }
        }
        return k
    }()

    /// A 64-byte aligned buffer of at least `count` floats, private to the calling thread.
    /// Valid until the same thread asks for the same slot again.
    public static func floats(_ count: Int, slot: Int) -> UnsafeMutablePointer<Float> {
        let slots: Slots
        if let raw = pthread_getspecific(key) {
            slots = Unmanaged<Slots>.fromOpaque(raw).takeUnretainedValue()
        } else {
            slots = Slots()
            pthread_setspecific(key, Unmanaged.passRetained(slots).toOpaque())
        }
        while slots.buffers.count <= slot { slots.buffers.append((UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64), 64)) }
        let bytes = max(64, count * 4)
        if slots.buffers[slot].bytes < bytes {
            slots.buffers[slot].pointer.deallocate()
            let grown = max(bytes, slots.buffers[slot].bytes * 3 / 2)
            slots.buffers[slot] = (UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 64), grown)
        }
        return slots.buffers[slot].pointer.assumingMemoryBound(to: Float.self)
    }
}

/// Scratch slots in use, so two users never share one on a thread.
enum ScratchSlot {
    static let packedB = 0
    static let splitK = 1
    static let im2col = 2
    static let columnGradient = 3
    static let packedChunk = 4
    static let lowRank = 5
    static let mergedWeights = 6
    static let winogradWeights = 7
    static let shortRows = 8
    static let winogradPartials = 9
}
