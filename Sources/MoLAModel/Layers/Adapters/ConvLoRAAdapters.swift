import MoLATensor

/// The reference's form, loralib's ConvLoRA: A_t (r·k)×(C_in·k) Kaiming-uniform (a = √5),
/// B_t (C_out·k)×(r·k) zero, and ΔW_t = scale·reshape(B_t·A_t) to C_out×C_in×k×k, an update
/// of rank up to r·k. The layer always merges: per task group one convolution with
/// W + ΔW_t; mixed by gates, conv(x, W) plus each adapter's conv(x, ΔW_t) scaled per image.
public final class ConvLoRAAdapters: ConvAdapters {
    public let rank: Int
    public let scale: Float
    public let a: [ParameterRef], b: [ParameterRef]
    public var form: AdapterForm { .convLora }
    public var count: Int { a.count }
    let kernel: Int, inChannels: Int, outChannels: Int

    /// Each group's (or, gated, each adapter's ΔW_t alone) merged weight, kept for backward.
    private var mergedWeights: [[Float]] = []
    private var mergedGrad: [Float] = []
    /// Gated: each adapter's output conv(x, ΔW_t).
    private var adapterOutputs: [Tensor] = []

    init(_ store: ParameterStore, name: String, kernel: Int, inChannels: Int, outChannels: Int, count: Int, rank: Int, alpha: Float) {
        self.kernel = kernel; self.inChannels = inChannels; self.outChannels = outChannels
        let rk = rank * kernel
        a = (0..<count).map {
            store.add("\(name).adapter.\($0).a", shape: [rk, inChannels * kernel], .kaimingUniform(fanIn: inChannels * kernel, a: Float(5).squareRoot()),
                      role: .adapter)
        }
        b = (0..<count).map { store.add("\(name).adapter.\($0).b", shape: [outChannels * kernel, rk], .zeros, role: .adapter) }
        self.rank = rank
        scale = alpha / Float(rank)
    }

    var patch: Int { kernel * kernel * inChannels }

    public func effectiveWeight(_ t: Int, of conv: Conv) -> [Float] {
        zip(delta(t, conv.store), UnsafeBufferPointer(start: conv.store.value(conv.weight), count: patch * outChannels)).map(+)
    }

    /// scale·reshape(B_t·A_t) alone, in our layout. Element (o, c, i, j) of the
    /// C_out×C_in×k×k reshape is element o·C_in·k² + c·k² + i·k + j of the flat
    /// (C_out·k)×(C_in·k) product.
    func delta(_ t: Int, _ store: ParameterStore) -> [Float] {
        let (k, cin, cout, rk) = (kernel, inChannels, outChannels, rank * kernel)
        var m = [Float](repeating: 0, count: cout * k * cin * k)
        GEMM.sgemm(m: cout * k, n: cin * k, k: rk, alpha: scale, a: store.value(b[t]), lda: rk, b: store.value(a[t]), ldb: cin * k,
                   c: &m, ldc: cin * k, engine: store.engine)
        var delta = [Float](repeating: 0, count: patch * cout)
        for o in 0..<cout { for c in 0..<cin { for i in 0..<k { for j in 0..<k {
            delta[((i * k + j) * cin + c) * cout + o] = m[((o * cin + c) * k + i) * k + j]
        } } } }
        return delta
    }

    /// From the gradient of a merged weight (our layout) to A_t's and B_t's: with dM the
    /// gradient reshaped back, dB += scale·dM·Aᵀ and dA += scale·Bᵀ·dM.
    func backwardThroughReshape(_ t: Int, _ store: ParameterStore, dMerged: UnsafePointer<Float>) {
        let (k, cin, cout, rk) = (kernel, inChannels, outChannels, rank * kernel)
        var dm = [Float](repeating: 0, count: cout * k * cin * k)
        for o in 0..<cout { for c in 0..<cin { for i in 0..<k { for j in 0..<k {
            dm[((o * cin + c) * k + i) * k + j] = dMerged[((i * k + j) * cin + c) * cout + o]
        } } } }
        store.engine.measure(.adapters) {
            GEMM.sgemm(transB: true, m: cout * k, n: rk, k: cin * k, alpha: scale, a: dm, lda: cin * k, b: store.value(a[t]), ldb: cin * k,
                       beta: 1, c: store.gradient(b[t]), ldc: rk, engine: store.engine)
            GEMM.sgemm(transA: true, m: rk, n: cin * k, k: cout * k, alpha: scale, a: store.value(b[t]), lda: rk, b: dm, ldb: cin * k,
                       beta: 1, c: store.gradient(a[t]), ldc: cin * k, engine: store.engine)
        }
    }

    // MARK: Per task

    /// Per task group: one convolution with its merged weight (kept for backward).
    public func forwardPerTask(_ conv: Conv, y: UnsafeMutablePointer<Float>) {
        let layout = conv.layout, inputShape = conv.inputShape
        mergedWeights = layout.groups.map { effectiveWeight($0.task, of: conv) }
        for (i, g) in layout.groups.enumerated() {
            let part = conv.convShape(batch: g.range.count, inputShape)
            mergedWeights[i].withUnsafeBufferPointer { w in
                Conv2D.forward(part, x: conv.input.pointer + g.range.lowerBound * inputShape.count, w: w.baseAddress!,
                               y: y + g.range.lowerBound * part.outHeight * part.outWidth * outChannels, engine: conv.store.engine)
            }
        }
    }

    /// Per group: dx with the merged weight; the merged weight's gradient goes to W whole
    /// and to A_t, B_t through the reshape.
    public func backwardPerTask(_ conv: Conv, dy: Tensor, dx: UnsafeMutablePointer<Float>?) {
        let store = conv.store, inputShape = conv.inputShape
        if mergedGrad.count != patch * outChannels { mergedGrad = [Float](repeating: 0, count: patch * outChannels) }
        for (i, g) in conv.layout.groups.enumerated() {
            let part = conv.convShape(batch: g.range.count, inputShape)
            let groupDy = dy.pointer + g.range.lowerBound * part.outHeight * part.outWidth * outChannels
            if let dx {
                mergedWeights[i].withUnsafeBufferPointer { w in
                    Conv2D.inputGradient(part, w: w.baseAddress!, dy: groupDy, dx: dx + g.range.lowerBound * inputShape.count, engine: conv.store.engine)
                }
            }
            mergedGrad.withUnsafeMutableBufferPointer { dm in
                Conv2D.weightGradient(part, x: conv.input.pointer + g.range.lowerBound * inputShape.count, dy: groupDy, dw: dm.baseAddress!,
                                      accumulate: false, engine: conv.store.engine)
                Elementwise.axpy(patch * outChannels, alpha: 1, dm.baseAddress!, store.gradient(conv.weight), engine: conv.store.engine)
                backwardThroughReshape(g.task, store, dMerged: dm.baseAddress!)
            }
        }
        mergedWeights = []
    }

    // MARK: Mixed by gates

    /// y = conv(x, W) + Σ_t g_t·conv(x, ΔW_t), each adapter's output kept.
    public func forwardGated(_ conv: Conv, gates: AdapterGates, y: UnsafeMutablePointer<Float>) {
        let store = conv.store, full = conv.batchShape, input = conv.input
        Conv2D.forward(full, x: input.pointer, w: store.value(conv.weight), y: y, engine: conv.store.engine)
        mergedWeights = (0..<count).map { delta($0, store) }  // ΔW_t alone
        if adapterOutputs.count != count { adapterOutputs = (0..<count).map { _ in Tensor(zeros: [0]) } }
        let perImage = full.outHeight * full.outWidth * outChannels, k = count, g = gates.weights.pointer
        for t in 0..<count {
            adapterOutputs[t].reuse(conv.output.shape)
            let yt = adapterOutputs[t].mutablePointer()
            mergedWeights[t].withUnsafeBufferPointer { Conv2D.forward(full, x: input.pointer, w: $0.baseAddress!, y: yt, engine: conv.store.engine) }
            for n in 0..<full.batch { Elementwise.axpy(perImage, alpha: g[n * k + t], yt + n * perImage, y + n * perImage, engine: conv.store.engine) }
        }
    }

    /// dg[n,t] += ⟨dy_n, conv(x_n, ΔW_t)⟩; with dy_t = g_t·dy: ΔW_t's gradient from dy_t
    /// (then A_t's, B_t's) and dx += the input gradient of conv(·, ΔW_t) for dy_t.
    public func backwardGated(_ conv: Conv, gates: AdapterGates, dy: Tensor, dx: UnsafeMutablePointer<Float>?) {
        let store = conv.store, full = conv.batchShape, input = conv.input
        Conv2D.backward(full, x: input.pointer, w: store.value(conv.weight), dy: dy.pointer, dx: dx, dw: store.gradient(conv.weight), engine: conv.store.engine)
        let perImage = full.outHeight * full.outWidth * outChannels, k = count
        let g = gates.weights.pointer, dg = gates.gradient.mutablePointer()
        var dyT = Tensor(uninitialized: dy.shape)
        var dDelta = [Float](repeating: 0, count: patch * outChannels)
        for t in 0..<count {
            let yt = adapterOutputs[t].pointer, d = dyT.mutablePointer()
            for n in 0..<full.batch {
                var acc: Float = 0
                for i in 0..<perImage { acc += dy.pointer[n * perImage + i] * yt[n * perImage + i]; d[n * perImage + i] = dy.pointer[n * perImage + i] * g[n * k + t] }
                dg[n * k + t] += acc
            }
            dDelta.withUnsafeMutableBufferPointer { dd in
                Conv2D.weightGradient(full, x: input.pointer, dy: dyT.pointer, dw: dd.baseAddress!, accumulate: false, engine: conv.store.engine)
                backwardThroughReshape(t, store, dMerged: dd.baseAddress!)
            }
            if let dx {
                mergedWeights[t].withUnsafeBufferPointer { Conv2D.inputGradient(full, w: $0.baseAddress!, dy: dyT.pointer, dx: dx, accumulate: true, engine: conv.store.engine) }
            }
        }
        mergedWeights = []
    }
}
