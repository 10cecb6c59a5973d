import MoLATensor

/// Per-image mixing weights of the adapters (MoLA-Router): softmax of the router's logits,
/// shared by every adapted layer, which add their gradients into `gradient`.
public final class AdapterGates {
    public internal(set) var weights = Tensor(zeros: [0])
    public internal(set) var gradient = Tensor(zeros: [0])
    public init() {}
}

/// A convolution (no bias: batch norm follows) with optional low-rank adapters.
///
/// Each adapter t has A_t (k×k×C_in×r, Kaiming-uniform: a k×k conv to r channels) and
/// B_t (r×C_out, zero: a 1×1 conv back), so ΔW_t = (alpha/r)·A_t·B_t is a rank-r update
/// of the weight and training starts from the plain backbone. Two ways to use them:
/// - per task (MoLA-Grad): images of task t see W + ΔW_t. Each task group runs as one
///   convolution with its merged weight; batch norm and everything else see the whole
///   batch, exactly as the reference computes it (see MOLA-NOTES), at 1/K of the cost.
/// - mixed by gates (MoLA-Router): y = conv(x, W) + Σ_t g_t(x)·conv(x, ΔW_t), computed
///   factorised: one k×k conv to K·r channels, each image's channel blocks scaled by its
///   gates, one 1×1 conv back.
///
/// The reference's form (`AdapterForm.convLora`, loralib's ConvLoRA) is also offered:
/// A_t (r·k)×(C_in·k), B_t (C_out·k)×(r·k) and ΔW_t = scale·reshape(B_t·A_t) to
/// C_out×C_in×k×k, an update of rank up to r·k. Those layers always merge (per task group,
/// or per adapter for the gates).
public final class Conv {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: ParameterRef
    public let adapters: Adapters?
    public let store: ParameterStore

    public struct Adapters {
        public let rank: Int
        public let scale: Float
        public let a: [ParameterRef]
        public let b: [ParameterRef]
        public var form: AdapterForm = .factorised
        public var count: Int { a.count }
    }

    private var input = Tensor(zeros: [0])
    private var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var layout = BatchLayout(tasks: [], training: false)
    private var gates: AdapterGates?
    /// Whether the last per-task forward ran factorised (see `factorises`).
    private var factorised = false
    private(set) var output = Tensor(zeros: [0])
    private var gradInput = Tensor(zeros: [0])
    private var mergedGrad: [Float] = []
    // Mixed mode: stacked adapters and the saved low-rank activations.
    private var aStack: [Float] = [], bStack: [Float] = []
    private var lowRank = Tensor(zeros: [0]), gatedLowRank = Tensor(zeros: [0])
    // Conv-LoRA: each group's (or adapter's) merged weight, and each adapter's output (gates).
    private var mergedWeights: [[Float]] = []
    private var adapterOutputs: [Tensor] = []

    /// - Parameter adapters: (count, rank, alpha) to give the layer `count` rank-r adapters.
    public init(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, adapters: (count: Int, rank: Int, alpha: Float)? = nil, form: AdapterForm = .factorised) {
        self.store = store
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        let k = kernel * kernel * inChannels
        // He initialisation for ReLU networks (fan-out), as torchvision's ResNets.
        weight = store.add("\(name).weight", shape: [kernel, kernel, inChannels, outChannels],
                           .kaimingNormal(fan: kernel * kernel * outChannels, gain: Float(2).squareRoot()))
        if let ad = adapters, form == .convLora {
            // loralib's shapes and initialisation: A Kaiming-uniform (a = √5) over its C_in·k
            // columns, B zero.
            let (rk, n) = (ad.rank * kernel, ad.count)
            let a = (0..<n).map {
                store.add("\(name).adapter.\($0).a", shape: [rk, inChannels * kernel], .kaimingUniform(fanIn: inChannels * kernel, a: Float(5).squareRoot()), role: .adapter)
            }
            let b = (0..<n).map { store.add("\(name).adapter.\($0).b", shape: [outChannels * kernel, rk], .zeros, role: .adapter) }
            self.adapters = Adapters(rank: ad.rank, scale: ad.alpha / Float(ad.rank), a: a, b: b, form: .convLora)
        } else if let ad = adapters {
            precondition(ad.rank >= 1 && ad.rank <= min(k, outChannels), "adapter rank \(ad.rank) exceeds the layer's size")
            func makeA(_ label: String) -> ParameterRef {
                store.add("\(name).adapter.\(label)a", shape: [kernel, kernel, inChannels, ad.rank], .kaimingUniform(fanIn: k, a: Float(5).squareRoot()), role: .adapter)
            }
            // Shared A: every adapter refers to the one tensor, so each adapter's code path is
            // unchanged and A's gradient is the sum over the adapters.
            let a = form == .sharedA ? Array(repeating: makeA(""), count: ad.count) : (0..<ad.count).map { makeA("\($0).") }
            let b = (0..<ad.count).map { store.add("\(name).adapter.\($0).b", shape: [ad.rank, outChannels], .zeros, role: .adapter) }
            self.adapters = Adapters(rank: ad.rank, scale: ad.alpha / Float(ad.rank), a: a, b: b, form: form)
        } else {
            self.adapters = nil
        }
    }

    var patch: Int { kernel * kernel * inChannels }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        let c = convShape(batch: 1, s)
        return FeatureShape(height: c.outHeight, width: c.outWidth, channels: outChannels)
    }

    func convShape(batch: Int, _ s: FeatureShape, outChannels out: Int? = nil) -> ConvShape {
        ConvShape(batch: batch, height: s.height, width: s.width, inChannels: inChannels, outChannels: out ?? outChannels,
                  kernel: kernel, stride: stride, padding: padding)
    }

    /// The im2col weight W + scale·A_t·B_t of adapter t.
    public func effectiveWeight(_ t: Int) -> [Float] {
        guard let ad = adapters else { return Array(UnsafeBufferPointer(start: store.value(weight), count: patch * outChannels)) }
        if ad.form == .convLora { return convLoraMerged(t, ad) }
        var out = [Float](repeating: 0, count: patch * outChannels)
        LowRank.merge(k: patch, n: outChannels, rank: ad.rank, scale: ad.scale, w: store.value(weight),
                      a: store.value(ad.a[t]), b: store.value(ad.b[t]), into: &out)
        return out
    }

    /// W + scale·A_t·B_t, merged by the convolution kernels as they pack it.
    private func weights(task t: Int, _ ad: Adapters) -> ConvWeights {
        ConvWeights(store.value(weight), adapter: (UnsafePointer(store.value(ad.a[t])), UnsafePointer(store.value(ad.b[t])), ad.rank, ad.scale))
    }

    /// `gates`: mix the adapters by these per-image weights (MoLA-Router) instead of
    /// picking each image's task adapter.
    public func forward(_ x: Tensor, shape s: FeatureShape, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        precondition(s.channels == inChannels && x.count == layout.count * s.count)
        input = x; inputShape = s; self.layout = layout; self.gates = adapters == nil ? nil : gates
        let full = convShape(batch: layout.count, s)
        output.reuse([layout.count, full.outHeight, full.outWidth, outChannels])
        let y = output.mutablePointer()
        guard let ad = adapters else {
            Conv2D.forward(full, x: x.pointer, w: store.value(weight), y: y)
            return output
        }
        if ad.form == .convLora {
            factorised = false
            if let gates { convLoraMixedForward(full, ad, gates, y) } else { convLoraForward(ad, y) }
            return output
        }
        if let gates {
            mixedForward(full, ad, gates, y)
            return output
        }
        factorised = factorises(full, groups: layout.groups.count, rank: ad.rank)
        if factorised {
            factorisedForward(full, ad, y)
            return output
        }
        for g in layout.groups {
            let part = convShape(batch: g.range.count, s)
            Conv2D.forward(part, x: x.pointer + g.range.lowerBound * s.count, weights: weights(task: g.task, ad),
                           y: y + g.range.lowerBound * part.outHeight * part.outWidth * outChannels)
        }
        return output
    }

    /// How a per-task layer runs (the same maths either way). Merged: each task group
    /// convolves with its W + ΔW_t, which costs per group a pass over W (packing) and
    /// products only as long as the group. Factorised: the whole batch convolves with W
    /// (Winograd where it applies), then each group adds its rank-r path (a k×k conv to r
    /// channels, a 1×1 conv back), at about 3·r/C_out of the layer's work. Factorised
    /// wins when the weights are large next to the pixels of a group — the late stages.
    func factorises(_ s: ConvShape, groups: Int, rank: Int) -> Bool {
        groups > 1 && rank < s.outChannels && s.rows < groups * s.outChannels * factorisedThreshold
    }
    /// Factorised when the batch's output pixels are fewer than groups · C_out times this
    /// (0: always merged; tests set a large value to run everything factorised). 4 makes
    /// ResNet-18's last two stages factorised at 28×28 with 9 tasks. Measured 2026-12-01 with
    /// `mola-bench train-step --backbone resnet18 --channels 3 --tasks 9 --method mola-grad`,
    /// rebuilding with other values here: 147 images/s at 4, 115 all merged, 121 all
    /// factorised; 1, 2 and 24 gave 144, 140 and 140.
    public var factorisedThreshold = 4

    /// y = conv(x, W) for the batch, then y_t += scale·conv(x_t, A_t)·B_t per group; the
    /// rank-r activations Z = conv(x, A_t) are kept for backward.
    private func factorisedForward(_ full: ConvShape, _ ad: Adapters, _ y: UnsafeMutablePointer<Float>) {
        Conv2D.forward(full, x: input.pointer, w: store.value(weight), y: y)
        let pixels = full.outHeight * full.outWidth
        lowRank.reuse([full.rows, ad.rank])
        let z = lowRank.mutablePointer()
        Profile.measure(.adapters) {
            for g in layout.groups {
                let part = convShape(batch: g.range.count, inputShape, outChannels: ad.rank)
                let row = g.range.lowerBound * pixels
                Conv2D.forward(part, x: input.pointer + g.range.lowerBound * inputShape.count, w: store.value(ad.a[g.task]), y: z + row * ad.rank)
                GEMM.sgemm(m: part.rows, n: outChannels, k: ad.rank, alpha: ad.scale, a: z + row * ad.rank, lda: ad.rank,
                           b: store.value(ad.b[g.task]), ldb: outChannels, beta: 1, c: y + row * outChannels, ldc: outChannels)
            }
        }
    }

    /// Gradients of the factorised form: W's and dx's over the batch; per group, with
    /// G = scale·dy_t·B_tᵀ: dB_t += scale·Z_tᵀ·dy_t, dA_t += im2col(x_t)ᵀ·G, dx_t += the
    /// input gradient of conv(x_t, A_t) for G.
    private func factorisedBackward(_ full: ConvShape, _ ad: Adapters, _ dy: Tensor, _ dx: UnsafeMutablePointer<Float>?) {
        Conv2D.weightGradient(full, x: input.pointer, dy: dy.pointer, dw: store.gradient(weight))
        if let dx { Conv2D.inputGradient(full, w: store.value(weight), dy: dy.pointer, dx: dx) }
        let pixels = full.outHeight * full.outWidth, r = ad.rank
        var g = Tensor(uninitialized: [full.rows, r])
        let gp = g.mutablePointer()
        Profile.measure(.adapters) {
            for group in layout.groups {
                let part = convShape(batch: group.range.count, inputShape, outChannels: r)
                let row = group.range.lowerBound * pixels
                let (dyT, zT, gT) = (dy.pointer + row * outChannels, lowRank.pointer + row * r, gp + row * r)
                let x = input.pointer + group.range.lowerBound * inputShape.count
                GEMM.sgemm(transB: true, m: part.rows, n: r, k: outChannels, alpha: ad.scale, a: dyT, lda: outChannels,
                           b: store.value(ad.b[group.task]), ldb: outChannels, c: gT, ldc: r)
                GEMM.sgemm(transA: true, m: r, n: outChannels, k: part.rows, alpha: ad.scale, a: zT, lda: r, b: dyT, ldb: outChannels,
                           beta: 1, c: store.gradient(ad.b[group.task]), ldc: outChannels)
                Conv2D.weightGradient(part, x: x, dy: gT, dw: store.gradient(ad.a[group.task]))
                if let dx {
                    Conv2D.inputGradient(part, w: store.value(ad.a[group.task]), dy: gT, dx: dx + group.range.lowerBound * inputShape.count,
                                         accumulate: true)
                }
            }
        }
    }

    private func mixedForward(_ full: ConvShape, _ ad: Adapters, _ gates: AdapterGates, _ y: UnsafeMutablePointer<Float>) {
        let (k, r, kr) = (ad.count, ad.rank, ad.count * ad.rank)
        aStack = [Float](repeating: 0, count: patch * kr)
        bStack = [Float](repeating: 0, count: kr * outChannels)
        for t in 0..<k {
            let a = store.value(ad.a[t]), b = store.value(ad.b[t])
            for p in 0..<patch { for j in 0..<r { aStack[p * kr + t * r + j] = a[p * r + j] } }
            for j in 0..<r { for c in 0..<outChannels { bStack[(t * r + j) * outChannels + c] = b[j * outChannels + c] } }
        }
        Conv2D.forward(full, x: input.pointer, w: store.value(weight), y: y)
        let lowShape = convShape(batch: full.batch, inputShape, outChannels: kr)
        lowRank.reuse([lowShape.rows, kr])
        aStack.withUnsafeBufferPointer { Conv2D.forward(lowShape, x: input.pointer, w: $0.baseAddress!, y: lowRank.mutablePointer()) }
        gatedLowRank.reuse([lowShape.rows, kr])
        let z = lowRank.pointer, zg = gatedLowRank.mutablePointer(), g = gates.weights.pointer
        let pixels = full.outHeight * full.outWidth
        for m in 0..<lowShape.rows {
            let n = m / pixels
            for t in 0..<k { for j in 0..<r { zg[m * kr + t * r + j] = z[m * kr + t * r + j] * g[n * k + t] } }
        }
        bStack.withUnsafeBufferPointer { b in
            GEMM.sgemm(m: lowShape.rows, n: outChannels, k: kr, alpha: ad.scale, a: zg, lda: kr, b: b.baseAddress!, ldb: outChannels,
                       beta: 1, c: y, ldc: outChannels)
        }
    }

    /// Accumulates the weight (and adapter, and gate) gradients; returns dx unless
    /// `needInputGradient` is false (the first layer).
    public func backward(_ dy: Tensor, needInputGradient: Bool = true) -> Tensor? {
        let s = inputShape
        let full = convShape(batch: layout.count, s)
        if needInputGradient { gradInput.reuse(input.shape) }
        let dx: UnsafeMutablePointer<Float>? = needInputGradient ? gradInput.mutablePointer() : nil
        if let ad = adapters, ad.form == .convLora {
            if let gates { convLoraMixedBackward(full, ad, gates, dy, dx) } else { convLoraBackward(ad, dy, dx) }
        } else if let ad = adapters, let gates {
            mixedBackward(full, ad, gates, dy, dx)
        } else if let ad = adapters, factorised {
            factorisedBackward(full, ad, dy, dx)
        } else if let ad = adapters {
            if mergedGrad.count != patch * outChannels { mergedGrad = [Float](repeating: 0, count: patch * outChannels) }
            for g in layout.groups {
                let part = convShape(batch: g.range.count, s)
                let x = input.pointer + g.range.lowerBound * s.count
                let groupDy = dy.pointer + g.range.lowerBound * part.outHeight * part.outWidth * outChannels
                if let dx { Conv2D.inputGradient(part, weights: weights(task: g.task, ad), dy: groupDy, dx: dx + g.range.lowerBound * s.count) }
                mergedGrad.withUnsafeMutableBufferPointer { dm in
                    let d = dm.baseAddress!
                    Conv2D.weightGradient(part, x: x, dy: groupDy, dw: d, accumulate: false)
                    // W' = W + scale·A·B: W's gradient is dW' itself.
                    Profile.measure(.adapters) {
                        LowRank.backward(k: patch, n: outChannels, rank: ad.rank, scale: ad.scale, a: store.value(ad.a[g.task]),
                                         b: store.value(ad.b[g.task]), dMerged: d, dA: store.gradient(ad.a[g.task]), dB: store.gradient(ad.b[g.task]),
                                         dW: store.gradient(weight))
                    }
                }
            }
        } else {
            Conv2D.backward(full, x: input.pointer, w: store.value(weight), dy: dy.pointer, dx: dx, dw: store.gradient(weight))
        }
        input = Tensor(zeros: [0])  // release, so the producer can reuse its buffer next step
        return needInputGradient ? gradInput : nil
    }

    private func mixedBackward(_ full: ConvShape, _ ad: Adapters, _ gates: AdapterGates, _ dy: Tensor, _ dx: UnsafeMutablePointer<Float>?) {
        let (k, r, kr) = (ad.count, ad.rank, ad.count * ad.rank)
        let lowShape = convShape(batch: full.batch, inputShape, outChannels: kr)
        let rows = lowShape.rows
        Conv2D.backward(full, x: input.pointer, w: store.value(weight), dy: dy.pointer, dx: dx, dw: store.gradient(weight))
        // B: dB = scale·Zgᵀ·dy. Z: dZg = scale·dy·Bᵀ.
        var dB = [Float](repeating: 0, count: kr * outChannels)
        GEMM.sgemm(transA: true, m: kr, n: outChannels, k: rows, alpha: ad.scale, a: gatedLowRank.pointer, lda: kr,
                   b: dy.pointer, ldb: outChannels, c: &dB, ldc: outChannels)
        var dZ = Tensor(uninitialized: [rows, kr])
        let dz = dZ.mutablePointer()
        bStack.withUnsafeBufferPointer { b in
            GEMM.sgemm(transB: true, m: rows, n: kr, k: outChannels, alpha: ad.scale, a: dy.pointer, lda: outChannels,
                       b: b.baseAddress!, ldb: outChannels, c: dz, ldc: kr)
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
            Conv2D.backward(lowShape, x: input.pointer, w: a.baseAddress!, dy: dz, dx: dxLow?.mutablePointer(), dw: &dA)
        }
        if let dx, let dxLow { Elementwise.axpy(dxLow.count, alpha: 1, dxLow.pointer, dx) }
        for t in 0..<k {
            let ga = store.gradient(ad.a[t]), gb = store.gradient(ad.b[t])
            for p in 0..<patch { for j in 0..<r { ga[p * r + j] += dA[p * kr + t * r + j] } }
            for j in 0..<r { for c in 0..<outChannels { gb[j * outChannels + c] += dB[(t * r + j) * outChannels + c] } }
        }
    }

    // MARK: Conv-LoRA (the reference's form)

    /// W + scale·reshape(B_t·A_t) in our (kh, kw, C_in) × C_out layout. Element (o, c, i, j)
    /// of the C_out×C_in×k×k reshape is element o·C_in·k² + c·k² + i·k + j of the flat
    /// (C_out·k)×(C_in·k) product.
    func convLoraMerged(_ t: Int, _ ad: Adapters) -> [Float] {
        zip(convLoraDelta(t, ad), UnsafeBufferPointer(start: store.value(weight), count: patch * outChannels)).map(+)
    }

    /// scale·reshape(B_t·A_t) alone, in our layout.
    func convLoraDelta(_ t: Int, _ ad: Adapters) -> [Float] {
        let (k, cin, cout, rk) = (kernel, inChannels, outChannels, ad.rank * kernel)
        var m = [Float](repeating: 0, count: cout * k * cin * k)
        GEMM.sgemm(m: cout * k, n: cin * k, k: rk, alpha: ad.scale, a: store.value(ad.b[t]), lda: rk, b: store.value(ad.a[t]), ldb: cin * k,
                   c: &m, ldc: cin * k)
        var delta = [Float](repeating: 0, count: patch * cout)
        for o in 0..<cout { for c in 0..<cin { for i in 0..<k { for j in 0..<k {
            delta[((i * k + j) * cin + c) * cout + o] = m[((o * cin + c) * k + i) * k + j]
        } } } }
        return delta
    }

    /// From the gradient of a merged weight (our layout) to A_t's and B_t's: with dM the
    /// gradient reshaped back, dB += scale·dM·Aᵀ and dA += scale·Bᵀ·dM.
    func convLoraBackward(_ t: Int, _ ad: Adapters, dMerged: UnsafePointer<Float>) {
        let (k, cin, cout, rk) = (kernel, inChannels, outChannels, ad.rank * kernel)
        var dm = [Float](repeating: 0, count: cout * k * cin * k)
        for o in 0..<cout { for c in 0..<cin { for i in 0..<k { for j in 0..<k {
            dm[((o * cin + c) * k + i) * k + j] = dMerged[((i * k + j) * cin + c) * cout + o]
        } } } }
        Profile.measure(.adapters) {
            GEMM.sgemm(transB: true, m: cout * k, n: rk, k: cin * k, alpha: ad.scale, a: dm, lda: cin * k, b: store.value(ad.a[t]), ldb: cin * k,
                       beta: 1, c: store.gradient(ad.b[t]), ldc: rk)
            GEMM.sgemm(transA: true, m: rk, n: cin * k, k: cout * k, alpha: ad.scale, a: store.value(ad.b[t]), lda: rk, b: dm, ldb: cin * k,
                       beta: 1, c: store.gradient(ad.a[t]), ldc: cin * k)
        }
    }

    /// Per task group: one convolution with its merged weight (kept for backward).
    private func convLoraForward(_ ad: Adapters, _ y: UnsafeMutablePointer<Float>) {
        mergedWeights = layout.groups.map { convLoraMerged($0.task, ad) }
        for (i, g) in layout.groups.enumerated() {
            let part = convShape(batch: g.range.count, inputShape)
            mergedWeights[i].withUnsafeBufferPointer { w in
                Conv2D.forward(part, x: input.pointer + g.range.lowerBound * inputShape.count, w: w.baseAddress!,
                               y: y + g.range.lowerBound * part.outHeight * part.outWidth * outChannels)
            }
        }
    }

    /// Per group: dx with the merged weight; the merged weight's gradient goes to W whole
    /// and to A_t, B_t through the reshape.
    private func convLoraBackward(_ ad: Adapters, _ dy: Tensor, _ dx: UnsafeMutablePointer<Float>?) {
        if mergedGrad.count != patch * outChannels { mergedGrad = [Float](repeating: 0, count: patch * outChannels) }
        for (i, g) in layout.groups.enumerated() {
            let part = convShape(batch: g.range.count, inputShape)
            let groupDy = dy.pointer + g.range.lowerBound * part.outHeight * part.outWidth * outChannels
            if let dx {
                mergedWeights[i].withUnsafeBufferPointer { w in
                    Conv2D.inputGradient(part, w: w.baseAddress!, dy: groupDy, dx: dx + g.range.lowerBound * inputShape.count)
                }
            }
            mergedGrad.withUnsafeMutableBufferPointer { dm in
                Conv2D.weightGradient(part, x: input.pointer + g.range.lowerBound * inputShape.count, dy: groupDy, dw: dm.baseAddress!, accumulate: false)
                Elementwise.axpy(patch * outChannels, alpha: 1, dm.baseAddress!, store.gradient(weight))
                convLoraBackward(g.task, ad, dMerged: dm.baseAddress!)
            }
        }
        mergedWeights = []
    }

    /// Gates: y = conv(x, W) + Σ_t g_t·conv(x, ΔW_t), each adapter's output kept.
    private func convLoraMixedForward(_ full: ConvShape, _ ad: Adapters, _ gates: AdapterGates, _ y: UnsafeMutablePointer<Float>) {
        Conv2D.forward(full, x: input.pointer, w: store.value(weight), y: y)
        mergedWeights = (0..<ad.count).map { convLoraDelta($0, ad) }  // ΔW_t alone
        if adapterOutputs.count != ad.count { adapterOutputs = (0..<ad.count).map { _ in Tensor(zeros: [0]) } }
        let perImage = full.outHeight * full.outWidth * outChannels, k = ad.count, g = gates.weights.pointer
        for t in 0..<ad.count {
            adapterOutputs[t].reuse(output.shape)
            let yt = adapterOutputs[t].mutablePointer()
            mergedWeights[t].withUnsafeBufferPointer { Conv2D.forward(full, x: input.pointer, w: $0.baseAddress!, y: yt) }
            for n in 0..<full.batch { Elementwise.axpy(perImage, alpha: g[n * k + t], yt + n * perImage, y + n * perImage) }
        }
    }

    /// dg[n,t] += ⟨dy_n, conv(x_n, ΔW_t)⟩; with dy_t = g_t·dy: ΔW_t's gradient from dy_t
    /// (then A_t's, B_t's) and dx += the input gradient of conv(·, ΔW_t) for dy_t.
    private func convLoraMixedBackward(_ full: ConvShape, _ ad: Adapters, _ gates: AdapterGates, _ dy: Tensor, _ dx: UnsafeMutablePointer<Float>?) {
        Conv2D.backward(full, x: input.pointer, w: store.value(weight), dy: dy.pointer, dx: dx, dw: store.gradient(weight))
        let perImage = full.outHeight * full.outWidth * outChannels, k = ad.count
        let g = gates.weights.pointer, dg = gates.gradient.mutablePointer()
        var dyT = Tensor(uninitialized: dy.shape)
        var dDelta = [Float](repeating: 0, count: patch * outChannels)
        for t in 0..<ad.count {
            let yt = adapterOutputs[t].pointer, d = dyT.mutablePointer()
            for n in 0..<full.batch {
                var acc: Float = 0
                for i in 0..<perImage { acc += dy.pointer[n * perImage + i] * yt[n * perImage + i]; d[n * perImage + i] = dy.pointer[n * perImage + i] * g[n * k + t] }
                dg[n * k + t] += acc
            }
            dDelta.withUnsafeMutableBufferPointer { dd in
                Conv2D.weightGradient(full, x: input.pointer, dy: dyT.pointer, dw: dd.baseAddress!, accumulate: false)
                convLoraBackward(t, ad, dMerged: dd.baseAddress!)
            }
            if let dx {
                mergedWeights[t].withUnsafeBufferPointer { Conv2D.inputGradient(full, w: $0.baseAddress!, dy: dyT.pointer, dx: dx, accumulate: true) }
            }
        }
        mergedWeights = []
    }
}

/// How a convolution's adapters are parameterised.
public enum AdapterForm: String, Codable, CaseIterable, Sendable {
    /// A k×k conv to r channels and a 1×1 conv back: ΔW of rank ≤ r.
    case factorised
    /// loralib's ConvLoRA, as the reference: ΔW = reshape(B·A), rank ≤ r·k.
    case convLora = "conv-lora"
    /// HydraLoRA's asymmetric form: the factorised adapters with one A per layer shared by
    /// all of them, a B per adapter (ΔW_t = scale·A·B_t).
    case sharedA = "shared-a"
}
