import MoLATensor

/// The factorised form: adapter t has A_t (k×k×C_in×r, Kaiming-uniform: a k×k conv to r
/// channels) and B_t (r×C_out, zero: a 1×1 conv back), so ΔW_t = scale·A_t·B_t is a rank-r
/// update of the weight and training starts from the plain backbone.
///
/// Per task, a layer runs one of two ways with the same maths (see `factorises`): merged,
/// each task group convolving with its W + ΔW_t (merged by the kernels as they pack it), or
/// factorised, the whole batch convolving with W and each group adding its rank-r path.
/// Mixed by gates it is always factorised: one k×k conv to K·r channels, each image's
/// channel blocks scaled by its gates, one 1×1 conv back.
public class FactorisedAdapters: ConvAdapters {
    public let rank: Int
    public let scale: Float
    public let a: [ParameterRef], b: [ParameterRef]
    public var form: AdapterForm { .factorised }
    public var count: Int { a.count }
    /// Factorised when the batch's output pixels are fewer than adapters · C_out times this
    /// (0: always merged; tests set a large value to run everything factorised). 4 makes
    /// ResNet-18's last two stages factorised at 28×28 with 9 tasks. Measured 2026-12-01 with
    /// `mola-bench train-step --backbone resnet18 --channels 3 --tasks 9 --method mola-grad`,
    /// rebuilding with other values here: 147 images/s at 4, 115 all merged, 121 all
    /// factorised; 1, 2 and 24 gave 144, 140 and 140.
    public var factorisedThreshold = 4

    /// Whether the last per-task forward ran factorised.
    private var factorised = false
    private var mergedGrad: [Float] = []
    // Gated: the stacked adapters and the saved low-rank activations (also the factorised
    // per-task path's Z).
    private var aStack: [Float] = [], bStack: [Float] = []
    private var lowRank = Tensor(zeros: [0]), gatedLowRank = Tensor(zeros: [0])

    init(rank: Int, scale: Float, a: [ParameterRef], b: [ParameterRef]) {
        self.rank = rank; self.scale = scale; self.a = a; self.b = b
    }

    /// Registers `count` adapters, each with its own A and B.
    convenience init(_ store: ParameterStore, name: String, kernel: Int, inChannels: Int, outChannels: Int, count: Int, rank: Int, alpha: Float) {
        Self.checkRank(rank, kernel: kernel, inChannels: inChannels, outChannels: outChannels)
        let a = (0..<count).map { Self.registerA(store, name: "\(name).adapter.\($0).a", kernel: kernel, inChannels: inChannels, rank: rank) }
        let b = (0..<count).map { Self.registerB(store, name: "\(name).adapter.\($0).b", rank: rank, outChannels: outChannels) }
        self.init(rank: rank, scale: alpha / Float(rank), a: a, b: b)
    }

    static func checkRank(_ rank: Int, kernel: Int, inChannels: Int, outChannels: Int) {
        precondition(rank >= 1 && rank <= min(kernel * kernel * inChannels, outChannels), "adapter rank \(rank) exceeds the layer's size")
    }

    static func registerA(_ store: ParameterStore, name: String, kernel: Int, inChannels: Int, rank: Int) -> ParameterRef {
        let k = kernel * kernel * inChannels
        return store.add(name, shape: [kernel, kernel, inChannels, rank], .kaimingUniform(fanIn: k, a: Float(5).squareRoot()), role: .adapter)
    }

    static func registerB(_ store: ParameterStore, name: String, rank: Int, outChannels: Int) -> ParameterRef {
        store.add(name, shape: [rank, outChannels], .zeros, role: .adapter)
    }

    public func effectiveWeight(_ t: Int, of conv: Conv) -> [Float] {
        var out = [Float](repeating: 0, count: conv.patch * conv.outChannels)
        LowRank.merge(k: conv.patch, n: conv.outChannels, rank: rank, scale: scale, w: conv.store.value(conv.weight),
                      a: conv.store.value(a[t]), b: conv.store.value(b[t]), into: &out, engine: conv.store.engine)
        return out
    }

    /// W + scale·A_t·B_t, merged by the convolution kernels as they pack it.
    private func weights(_ conv: Conv, task t: Int) -> ConvWeights {
        let store = conv.store
        return ConvWeights(store.value(conv.weight), adapter: (UnsafePointer(store.value(a[t])), UnsafePointer(store.value(b[t])), rank, scale))
    }

    /// How a per-task layer runs. Merged: each task group convolves with its W + ΔW_t,
    /// which costs per group a pass over W (packing) and products only as long as the
    /// group. Factorised: the whole batch convolves with W (Winograd where it applies), then
    /// each group adds its rank-r path (a k×k conv to r channels, a 1×1 conv back), at about
    /// 3·r/C_out of the layer's work. Factorised wins when the weights are large next to the
    /// pixels of a group — the late stages. Decided for the engine's `pathBatch` and every
    /// adapter, not for the groups a rank happens to hold, so every rank and one process
    /// run a layer alike.
    func factorises(_ s: ConvShape, engine: Engine) -> Bool {
        let rows = (engine.pathBatch ?? s.batch) * s.outHeight * s.outWidth
        return count > 1 && rank < s.outChannels && rows < count * s.outChannels * factorisedThreshold
    }

    // MARK: Per task

    public func forwardPerTask(_ conv: Conv, y: UnsafeMutablePointer<Float>) {
        let full = conv.batchShape, layout = conv.layout, s = conv.inputShape
        factorised = factorises(full, engine: conv.store.engine)
        if factorised {
            factorisedForward(conv, full, y)
            return
        }
        for g in layout.groups {
            let part = conv.convShape(batch: g.range.count, s)
            Conv2D.forward(part, x: conv.input.pointer + g.range.lowerBound * s.count, weights: weights(conv, task: g.task),
                           y: y + g.range.lowerBound * part.outHeight * part.outWidth * conv.outChannels, engine: conv.store.engine)
        }
    }

    public func backwardPerTask(_ conv: Conv, dy: Tensor, dx: UnsafeMutablePointer<Float>?) {
        if factorised {
            factorisedBackward(conv, conv.batchShape, dy, dx)
            return
        }
        let s = conv.inputShape, store = conv.store, patch = conv.patch, outChannels = conv.outChannels
        if mergedGrad.count != patch * outChannels { mergedGrad = [Float](repeating: 0, count: patch * outChannels) }
        for g in conv.layout.groups {
            let part = conv.convShape(batch: g.range.count, s)
            let x = conv.input.pointer + g.range.lowerBound * s.count
            let groupDy = dy.pointer + g.range.lowerBound * part.outHeight * part.outWidth * outChannels
            if let dx { Conv2D.inputGradient(part, weights: weights(conv, task: g.task), dy: groupDy, dx: dx + g.range.lowerBound * s.count, engine: conv.store.engine) }
            mergedGrad.withUnsafeMutableBufferPointer { dm in
                let d = dm.baseAddress!
                Conv2D.weightGradient(part, x: x, dy: groupDy, dw: d, accumulate: false, engine: conv.store.engine)
                // W' = W + scale·A·B: W's gradient is dW' itself.
                conv.store.engine.measure(.adapters) {
                    LowRank.backward(k: patch, n: outChannels, rank: rank, scale: scale, a: store.value(a[g.task]),
                                     b: store.value(b[g.task]), dMerged: d, dA: store.gradient(a[g.task]), dB: store.gradient(b[g.task]),
                                     dW: store.gradient(conv.weight), engine: conv.store.engine)
                }
            }
        }
    }

    /// y = conv(x, W) for the batch, then y_t += scale·conv(x_t, A_t)·B_t per group; the
    /// rank-r activations Z = conv(x, A_t) are kept for backward.
    private func factorisedForward(_ conv: Conv, _ full: ConvShape, _ y: UnsafeMutablePointer<Float>) {
        let store = conv.store, input = conv.input, inputShape = conv.inputShape, outChannels = conv.outChannels
        Conv2D.forward(full, x: input.pointer, w: store.value(conv.weight), y: y, engine: conv.store.engine)
        let pixels = full.outHeight * full.outWidth
        lowRank.reuse([full.rows, rank])
        let z = lowRank.mutablePointer()
        conv.store.engine.measure(.adapters) {
            for g in conv.layout.groups {
                let part = conv.convShape(batch: g.range.count, inputShape, outChannels: rank)
                let row = g.range.lowerBound * pixels
                Conv2D.forward(part, x: input.pointer + g.range.lowerBound * inputShape.count, w: store.value(a[g.task]), y: z + row * rank, engine: conv.store.engine)
                GEMM.sgemm(m: part.rows, n: outChannels, k: rank, alpha: scale, a: z + row * rank, lda: rank,
                           b: store.value(b[g.task]), ldb: outChannels, beta: 1, c: y + row * outChannels, ldc: outChannels, engine: conv.store.engine)
            }
        }
    }

    /// Gradients of the factorised form: W's and dx's over the batch; per group, with
    /// G = scale·dy_t·B_tᵀ: dB_t += scale·Z_tᵀ·dy_t, dA_t += im2col(x_t)ᵀ·G, dx_t += the
    /// input gradient of conv(x_t, A_t) for G.
    private func factorisedBackward(_ conv: Conv, _ full: ConvShape, _ dy: Tensor, _ dx: UnsafeMutablePointer<Float>?) {
        let store = conv.store, input = conv.input, inputShape = conv.inputShape, outChannels = conv.outChannels
        Conv2D.weightGradient(full, x: input.pointer, dy: dy.pointer, dw: store.gradient(conv.weight), engine: conv.store.engine)
        if let dx { Conv2D.inputGradient(full, w: store.value(conv.weight), dy: dy.pointer, dx: dx, engine: conv.store.engine) }
        let pixels = full.outHeight * full.outWidth, r = rank
        var g = Tensor(uninitialized: [full.rows, r])
        let gp = g.mutablePointer()
        conv.store.engine.measure(.adapters) {
            for group in conv.layout.groups {
                let part = conv.convShape(batch: group.range.count, inputShape, outChannels: r)
                let row = group.range.lowerBound * pixels
                let (dyT, zT, gT) = (dy.pointer + row * outChannels, lowRank.pointer + row * r, gp + row * r)
                let x = input.pointer + group.range.lowerBound * inputShape.count
                GEMM.sgemm(transB: true, m: part.rows, n: r, k: outChannels, alpha: scale, a: dyT, lda: outChannels,
                           b: store.value(b[group.task]), ldb: outChannels, c: gT, ldc: r, engine: conv.store.engine)
                GEMM.sgemm(transA: true, m: r, n: outChannels, k: part.rows, alpha: scale, a: zT, lda: r, b: dyT, ldb: outChannels,
                           beta: 1, c: store.gradient(b[group.task]), ldc: outChannels, engine: conv.store.engine)
                Conv2D.weightGradient(part, x: x, dy: gT, dw: store.gradient(a[group.task]), engine: conv.store.engine)
                if let dx {
                    Conv2D.inputGradient(part, w: store.value(a[group.task]), dy: gT, dx: dx + group.range.lowerBound * inputShape.count,
                                         accumulate: true, engine: conv.store.engine)
                }
            }
        }
    }

    // MARK: Mixed by gates

    public func forwardGated(_ conv: Conv, gates: AdapterGates, y: UnsafeMutablePointer<Float>) {
        let store = conv.store, input = conv.input, patch = conv.patch, outChannels = conv.outChannels, full = conv.batchShape
        let (k, r, kr) = (count, rank, count * rank)
        aStack = [Float](repeating: 0, count: patch * kr)
        bStack = [Float](repeating: 0, count: kr * outChannels)
        for t in 0..<k {
            let a = store.value(self.a[t]), b = store.value(self.b[t])
            for p in 0..<patch { for j in 0..<r { aStack[p * kr + t * r + j] = a[p * r + j] } }
            for j in 0..<r { for c in 0..<outChannels { bStack[(t * r + j) * outChannels + c] = b[j * outChannels + c] } }
        }
        Conv2D.forward(full, x: input.pointer, w: store.value(conv.weight), y: y, engine: conv.store.engine)
        let lowShape = conv.convShape(batch: full.batch, conv.inputShape, outChannels: kr)
        lowRank.reuse([lowShape.rows, kr])
        aStack.withUnsafeBufferPointer { Conv2D.forward(lowShape, x: input.pointer, w: $0.baseAddress!, y: lowRank.mutablePointer(), engine: conv.store.engine) }
        gatedLowRank.reuse([lowShape.rows, kr])
        let z = lowRank.pointer, zg = gatedLowRank.mutablePointer(), g = gates.weights.pointer
        let pixels = full.outHeight * full.outWidth
        for m in 0..<lowShape.rows {
            let n = m / pixels
            for t in 0..<k { for j in 0..<r { zg[m * kr + t * r + j] = z[m * kr + t * r + j] * g[n * k + t] } }
        }
        bStack.withUnsafeBufferPointer { b in
            GEMM.sgemm(m: lowShape.rows, n: outChannels, k: kr, alpha: scale, a: zg, lda: kr, b: b.baseAddress!, ldb: outChannels,
                       beta: 1, c: y, ldc: outChannels, engine: conv.store.engine)
        }
    }

    public func backwardGated(_ conv: Conv, gates: AdapterGates, dy: Tensor, dx: UnsafeMutablePointer<Float>?) {
        let store = conv.store, input = conv.input, patch = conv.patch, outChannels = conv.outChannels, full = conv.batchShape
        let (k, r, kr) = (count, rank, count * rank)
        let lowShape = conv.convShape(batch: full.batch, conv.inputShape, outChannels: kr)
        let rows = lowShape.rows
        Conv2D.backward(full, x: input.pointer, w: store.value(conv.weight), dy: dy.pointer, dx: dx, dw: store.gradient(conv.weight), engine: conv.store.engine)
        // B: dB = scale·Zgᵀ·dy. Z: dZg = scale·dy·Bᵀ.
        var dB = [Float](repeating: 0, count: kr * outChannels)
        GEMM.sgemm(transA: true, m: kr, n: outChannels, k: rows, alpha: scale, a: gatedLowRank.pointer, lda: kr,
                   b: dy.pointer, ldb: outChannels, c: &dB, ldc: outChannels, engine: conv.store.engine)
        var dZ = Tensor(uninitialized: [rows, kr])
        let dz = dZ.mutablePointer()
        bStack.withUnsafeBufferPointer { b in
            GEMM.sgemm(transB: true, m: rows, n: kr, k: outChannels, alpha: scale, a: dy.pointer, lda: outChannels,
                       b: b.baseAddress!, ldb: outChannels, c: dz, ldc: kr, engine: conv.store.engine)
        }
        // Gates: dg[n,t] += Σ dZg·Z over the image's pixels and the adapter's channels; then dZ = dZg·g.
        let z = lowRank.pointer, g = gates.weights.pointer, dg = gates.gradient.mutablePointer()
        let pixels = full.outHeight * full.outWidth
        for m in 0..<rows {
            let n = m / pixels
            for t in 0..<k {
                var acc: Float = 0
                for j in 0..<r { acc += dz[m * kr + t * r + j] * z[m * kr + t * r + j] }
                dg[n * k + t] += acc
                for j in 0..<r { dz[m * kr + t * r + j] *= g[n * k + t] }
            }
        }
        var dA = [Float](repeating: 0, count: patch * kr)
        var dxLow = dx.map { _ in Tensor(uninitialized: input.shape) }
        aStack.withUnsafeBufferPointer { a in
            Conv2D.backward(lowShape, x: input.pointer, w: a.baseAddress!, dy: dz, dx: dxLow?.mutablePointer(), dw: &dA, engine: conv.store.engine)
        }
        if let dx, let dxLow { Elementwise.axpy(dxLow.count, alpha: 1, dxLow.pointer, dx, engine: conv.store.engine) }
        for t in 0..<k {
            let ga = store.gradient(a[t]), gb = store.gradient(b[t])
            for p in 0..<patch { for j in 0..<r { ga[p * r + j] += dA[p * kr + t * r + j] } }
            for j in 0..<r { for c in 0..<outChannels { gb[j * outChannels + c] += dB[(t * r + j) * outChannels + c] } }
        }
    }
}

/// HydraLoRA's asymmetric form: the factorised adapters with one A per layer shared by all
/// of them and a B per adapter (ΔW_t = scale·A·B_t). Every adapter refers to the one A, so
/// each adapter's code path is the factorised one and A's gradient is the sum over them.
public final class SharedAAdapters: FactorisedAdapters {
    public override var form: AdapterForm { .sharedA }

    init(_ store: ParameterStore, name: String, kernel: Int, inChannels: Int, outChannels: Int, count: Int, rank: Int, alpha: Float) {
        Self.checkRank(rank, kernel: kernel, inChannels: inChannels, outChannels: outChannels)
        let shared = Self.registerA(store, name: "\(name).adapter.a", kernel: kernel, inChannels: inChannels, rank: rank)
        let b = (0..<count).map { Self.registerB(store, name: "\(name).adapter.\($0).b", rank: rank, outChannels: outChannels) }
        super.init(rank: rank, scale: alpha / Float(rank), a: Array(repeating: shared, count: count), b: b)
    }
}
