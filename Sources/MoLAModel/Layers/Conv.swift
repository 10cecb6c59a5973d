import MoLATensor

/// A convolution (no bias: batch norm follows) with optional low-rank adapters.
///
/// With adapters, each task t has A_t (K×r, Kaiming-uniform) and B_t (r×N, zero), and
/// the images of task t see W + (alpha/r)·A_t·B_t (MoLA-Grad). Each task group runs as
/// one convolution with its merged weight; batch norm and everything else see the whole
/// batch, exactly as the reference computes it (see MOLA-NOTES), at 1/K of the cost.
public final class Conv {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: ParameterRef
    public let adapters: Adapters?
    let store: ParameterStore

    public struct Adapters {
        public let rank: Int
        public let scale: Float
        public let a: [ParameterRef]
        public let b: [ParameterRef]
    }

    private var input = Tensor(zeros: [0])
    private var inputShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var layout = BatchLayout(tasks: [], training: false)
    private(set) var output = Tensor(zeros: [0])
    private var gradInput = Tensor(zeros: [0])
    private var merged: [Float] = []
    private var mergedGrad: [Float] = []

    /// - Parameter adapters: (tasks, rank, alpha) to give each task a rank-r adapter.
    public init(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, adapters: (tasks: Int, rank: Int, alpha: Float)? = nil) {
        self.store = store
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        let k = kernel * kernel * inChannels
        // He initialisation for ReLU networks (fan-out), as torchvision's ResNets.
        weight = store.add("\(name).weight", shape: [kernel, kernel, inChannels, outChannels],
                           .kaimingNormal(fan: kernel * kernel * outChannels, gain: Float(2).squareRoot()))
        if let ad = adapters {
            precondition(ad.rank >= 1 && ad.rank <= min(k, outChannels), "adapter rank \(ad.rank) exceeds the layer's size")
            let a = (0..<ad.tasks).map { store.add("\(name).adapter.\($0).a", shape: [k, ad.rank], .kaimingUniform(fanIn: k, a: Float(5).squareRoot())) }
            let b = (0..<ad.tasks).map { store.add("\(name).adapter.\($0).b", shape: [ad.rank, outChannels], .zeros) }
            self.adapters = Adapters(rank: ad.rank, scale: ad.alpha / Float(ad.rank), a: a, b: b)
        } else {
            self.adapters = nil
        }
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        let c = convShape(batch: 1, s)
        return FeatureShape(height: c.outHeight, width: c.outWidth, channels: outChannels)
    }

    func convShape(batch: Int, _ s: FeatureShape) -> ConvShape {
        ConvShape(batch: batch, height: s.height, width: s.width, inChannels: inChannels, outChannels: outChannels,
                  kernel: kernel, stride: stride, padding: padding)
    }

    /// The weight task `task` sees: W itself, or W + scale·A·B merged into `merged`.
    private func effectiveWeight(task: Int) -> UnsafePointer<Float> {
        guard let ad = adapters else { return UnsafePointer(store.value(weight)) }
        let k = kernel * kernel * inChannels
        merged.withUnsafeMutableBufferPointer { m in
            LowRank.merge(k: k, n: outChannels, rank: ad.rank, scale: ad.scale, w: store.value(weight),
                          a: store.value(ad.a[task]), b: store.value(ad.b[task]), into: m.baseAddress!)
        }
        return merged.withUnsafeBufferPointer { $0.baseAddress! }
    }

    public func forward(_ x: Tensor, shape s: FeatureShape, layout: BatchLayout) -> Tensor {
        precondition(s.channels == inChannels && x.count == layout.count * s.count)
        input = x; inputShape = s; self.layout = layout
        let full = convShape(batch: layout.count, s)
        output.reuse([layout.count, full.outHeight, full.outWidth, outChannels])
        let y = output.mutablePointer()
        if adapters == nil {
            Conv2D.forward(full, x: x.pointer, w: store.value(weight), y: y)
        } else {
            if merged.count != store.entry(weight).count { merged = [Float](repeating: 0, count: store.entry(weight).count) }
            for g in layout.groups {
                let part = convShape(batch: g.range.count, s)
                Conv2D.forward(part, x: x.pointer + g.range.lowerBound * s.count, w: effectiveWeight(task: g.task),
                               y: y + g.range.lowerBound * part.outHeight * part.outWidth * outChannels)
            }
        }
        return output
    }

    /// Accumulates the weight (and adapter) gradients; returns dx unless `needInputGradient`
    /// is false (the first layer).
    public func backward(_ dy: Tensor, needInputGradient: Bool = true) -> Tensor? {
        let s = inputShape
        let full = convShape(batch: layout.count, s)
        if needInputGradient { gradInput.reuse(input.shape) }
        let dx: UnsafeMutablePointer<Float>? = needInputGradient ? gradInput.mutablePointer() : nil
        if let ad = adapters {
            let k = kernel * kernel * inChannels
            if mergedGrad.count != k * outChannels { mergedGrad = [Float](repeating: 0, count: k * outChannels) }
            for g in layout.groups {
                let part = convShape(batch: g.range.count, s)
                let w = effectiveWeight(task: g.task)
                let outOffset = g.range.lowerBound * part.outHeight * part.outWidth * outChannels
                mergedGrad.withUnsafeMutableBufferPointer { dm in
                    let d = dm.baseAddress!
                    d.update(repeating: 0, count: k * outChannels)
                    Conv2D.backward(part, x: input.pointer + g.range.lowerBound * s.count, w: w, dy: dy.pointer + outOffset,
                                    dx: dx.map { $0 + g.range.lowerBound * s.count }, dw: d)
                    // W' = W + scale·A·B: W's gradient is dW' itself.
                    MoLATensor.Elementwise.axpy(k * outChannels, alpha: 1, d, store.gradient(weight))
                    LowRank.backward(k: k, n: outChannels, rank: ad.rank, scale: ad.scale, a: store.value(ad.a[g.task]),
                                     b: store.value(ad.b[g.task]), dMerged: d, dA: store.gradient(ad.a[g.task]), dB: store.gradient(ad.b[g.task]))
                }
            }
        } else {
            Conv2D.backward(full, x: input.pointer, w: store.value(weight), dy: dy.pointer, dx: dx, dw: store.gradient(weight))
        }
        input = Tensor(zeros: [0])  // release, so the producer can reuse its buffer next step
        return needInputGradient ? gradInput : nil
    }
}
