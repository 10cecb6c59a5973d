import MoLATensor

/// Per-image mixing weights of the adapters (MoLA-Router): softmax of the router's logits,
/// shared by every adapted layer, which add their gradients into `gradient`.
public final class AdapterGates {
    public internal(set) var weights = Tensor(zeros: [0])
    public internal(set) var gradient = Tensor(zeros: [0])
    public init() {}
}

/// A convolution (no bias: batch norm follows): the weight W, kh×kw×C_in×C_out, and
/// optionally low-rank adapters beside it (one of the forms in `Adapters/`), which then
/// run the layer. Each task group of a batch sees W + ΔW_task (MoLA-Grad), or every image
/// a mixture of the adapters by its gates (MoLA-Router); see `ConvAdapters`.
public final class Conv {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: ParameterRef
    public let store: ParameterStore
    /// The layer's adapters (nil: a plain convolution).
    public let adapters: (any ConvAdapters)?

    // What the last forward saw, for backward (the adapters read them too).
    private(set) var input = Tensor(zeros: [0])
    private(set) var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private(set) var layout = BatchLayout(tasks: [], training: false)
    private var gates: AdapterGates?
    private(set) var output = Tensor(zeros: [0])
    private var gradInput = Tensor(zeros: [0])

    /// - Parameter adapters: (count, rank, alpha) to give the layer `count` rank-r adapters
    ///   of the given form.
    public init(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, adapters: (count: Int, rank: Int, alpha: Float)? = nil, form: AdapterForm = .factorised) {
        self.store = store
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        // He initialisation for ReLU networks (fan-out), as torchvision's ResNets.
        weight = store.add("\(name).weight", shape: [kernel, kernel, inChannels, outChannels],
                           .kaimingNormal(fan: kernel * kernel * outChannels, gain: Float(2).squareRoot()))
        self.adapters = adapters.map { ad in
            form.make(store, name: name, kernel: kernel, inChannels: inChannels, outChannels: outChannels,
                      count: ad.count, rank: ad.rank, alpha: ad.alpha)
        }
    }

    /// Rows of the weight in im2col layout: k·k·C_in.
    var patch: Int { kernel * kernel * inChannels }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        let c = convShape(batch: 1, s)
        return FeatureShape(height: c.outHeight, width: c.outWidth, channels: outChannels)
    }

    /// This layer's geometry on `batch` images of shape `s` (with another output width for
    /// an adapter's rank-r path).
    func convShape(batch: Int, _ s: FeatureShape, outChannels out: Int? = nil) -> ConvShape {
        ConvShape(batch: batch, height: s.height, width: s.width, inChannels: inChannels, outChannels: out ?? outChannels,
                  kernel: kernel, stride: stride, padding: padding)
    }

    /// The whole batch of the last forward.
    var batchShape: ConvShape { convShape(batch: layout.count, inputShape) }

    /// The im2col weight adapter t gives: W + ΔW_t (W itself without adapters).
    public func effectiveWeight(_ t: Int) -> [Float] {
        guard let adapters else { return Array(UnsafeBufferPointer(start: store.value(weight), count: patch * outChannels)) }
        return adapters.effectiveWeight(t, of: self)
    }

    /// `gates`: mix the adapters by these per-image weights (MoLA-Router) instead of
    /// picking each image's task adapter.
    public func forward(_ x: Tensor, shape s: FeatureShape, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        precondition(s.channels == inChannels && x.count == layout.count * s.count)
        input = x; inputShape = s; self.layout = layout; self.gates = adapters == nil ? nil : gates
        let full = batchShape
        output.reuse([layout.count, full.outHeight, full.outWidth, outChannels])
        let y = output.mutablePointer()
        if let adapters {
            if let gates { adapters.forwardGated(self, gates: gates, y: y) } else { adapters.forwardPerTask(self, y: y) }
        } else {
            Conv2D.forward(full, x: x.pointer, w: store.value(weight), y: y, engine: store.engine)
        }
        return output
    }

    /// Accumulates the weight (and adapter, and gate) gradients; returns dx unless
    /// `needInputGradient` is false (the first layer).
    public func backward(_ dy: Tensor, needInputGradient: Bool = true) -> Tensor? {
        if needInputGradient { gradInput.reuse(input.shape) }
        let dx: UnsafeMutablePointer<Float>? = needInputGradient ? gradInput.mutablePointer() : nil
        if let adapters {
            if let gates { adapters.backwardGated(self, gates: gates, dy: dy, dx: dx) } else { adapters.backwardPerTask(self, dy: dy, dx: dx) }
        } else {
            Conv2D.backward(batchShape, x: input.pointer, w: store.value(weight), dy: dy.pointer, dx: dx, dw: store.gradient(weight), engine: store.engine)
        }
        input = Tensor(zeros: [0])  // release, so the producer can reuse its buffer next step
        return needInputGradient ? gradInput : nil
    }
}
