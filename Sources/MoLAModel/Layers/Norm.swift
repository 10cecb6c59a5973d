import MoLATensor

/// Batch normalisation over all images of the batch (every task together), with running
/// averages for evaluation; optionally followed by a residual add and ReLU, in one pass.
public final class BatchNormLayer {
    public let channels: Int
    public let gamma: ParameterRef, beta: ParameterRef
    public let runningMean: ParameterRef, runningVar: ParameterRef
    public let relu: Bool
    let store: ParameterStore
    public var momentum: Float = 0.1

    private var input = Tensor(zeros: [0])
    private var training = false
    private(set) var output = Tensor(zeros: [0])
    private var gradInput = Tensor(zeros: [0])
    private var mean: [Float], invStd: [Float]

    public init(_ store: ParameterStore, name: String, channels: Int, relu: Bool, zeroInit: Bool = false) {
        self.store = store
        self.channels = channels
        self.relu = relu
        gamma = store.add("\(name).weight", shape: [channels], zeroInit ? .zeros : .ones, decay: true)
        beta = store.add("\(name).bias", shape: [channels], .zeros, decay: true)
        runningMean = store.add("\(name).running_mean", shape: [channels], .zeros, trainable: false)
        runningVar = store.add("\(name).running_var", shape: [channels], .ones, trainable: false)
        mean = [Float](repeating: 0, count: channels)
        invStd = mean
    }

    /// `residual`: added after normalising, before the ReLU (a residual block's last BN).
    public func forward(_ x: Tensor, training: Bool, residual: Tensor? = nil) -> Tensor {
        input = x
        self.training = training
        output.reuse(x.shape)
        let rows = x.count / channels
        let y = output.mutablePointer()
        Profile.measure(.batchNorm) {
        if training {
            mean.withUnsafeMutableBufferPointer { m in invStd.withUnsafeMutableBufferPointer { s in
                BatchNorm.forwardTrain(rows: rows, channels: channels, x: x.pointer, gamma: store.value(gamma), beta: store.value(beta),
                                       y: y, mean: m.baseAddress!, invStd: s.baseAddress!, runningMean: store.value(runningMean),
                                       runningVar: store.value(runningVar), momentum: momentum, residual: residual?.pointer, relu: relu)
            } }
        } else {
            BatchNorm.forwardEval(rows: rows, channels: channels, x: x.pointer, gamma: store.value(gamma), beta: store.value(beta),
                                  runningMean: store.value(runningMean), runningVar: store.value(runningVar), y: y,
                                  residual: residual?.pointer, relu: relu)
        }
        }
        return output
    }

    /// `reluOutput`: the output of a ReLU this layer's output fed (a residual block's, when
    /// this is its shortcut's BN); the layer's own output when it applies the ReLU itself.
    /// `overwritingGradient`: the caller no longer needs dy, so dx is written over it and
    /// returned (one activation-sized buffer less per layer; the kernel allows the alias).
    public func backward(_ dy: Tensor, reluOutput: Tensor? = nil, overwritingGradient: Bool = false) -> Tensor {
        precondition(training, "backward after an evaluation forward")
        let dx: UnsafeMutablePointer<Float>
        if overwritingGradient {
            dx = UnsafeMutablePointer(mutating: dy.pointer)
        } else {
            gradInput.reuse(input.shape)
            dx = gradInput.mutablePointer()
        }
        let rows = input.count / channels
        Profile.measure(.batchNorm) { mean.withUnsafeBufferPointer { m in invStd.withUnsafeBufferPointer { s in
            BatchNorm.backward(rows: rows, channels: channels, x: input.pointer, dy: dy.pointer, gamma: store.value(gamma),
                               mean: m.baseAddress!, invStd: s.baseAddress!, dx: dx, dGamma: store.gradient(gamma), dBeta: store.gradient(beta),
                               reluOutput: reluOutput?.pointer ?? (relu ? output.pointer : nil))
        } } }
        input = Tensor(zeros: [0])
        return overwritingGradient ? dy : gradInput
    }
}
