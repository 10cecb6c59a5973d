import MoLATensor

/// Batch normalisation over all images of the batch (every task together), with running
/// averages for evaluation; optionally followed by a residual add and ReLU, in one pass.
///
/// Per task (`tasks` given): each task group of the batch is normalised with its own
/// statistics and, at evaluation, its own running averages — domain-specific batch norm;
/// γ and β stay shared. A task whose adapter drifts then no longer sets the statistics
/// other tasks are normalised with.
public final class BatchNormLayer {
    public let channels: Int
    public let gamma: ParameterRef, beta: ParameterRef
    /// One pair per task when per task, else one.
    public let runningMeans: [ParameterRef], runningVars: [ParameterRef]
    public var runningMean: ParameterRef { runningMeans[0] }
    public var runningVar: ParameterRef { runningVars[0] }
    public let perTask: Bool
    public let relu: Bool
    let store: ParameterStore
    public var momentum: Float = 0.1

    private var input = Tensor(zeros: [0])
    private var training = false
    private(set) var output = Tensor(zeros: [0])
    private var gradInput = Tensor(zeros: [0])
    private var mean: [Float], invStd: [Float]
    /// Per-task mode: the forward's groups, and each group's saved statistics.
    private var groups: [BatchLayout.Group] = []
    private var groupMean: [[Float]] = [], groupInvStd: [[Float]] = []

    public init(_ store: ParameterStore, name: String, channels: Int, relu: Bool, zeroInit: Bool = false, tasks: Int? = nil) {
        self.store = store
        self.channels = channels
        self.relu = relu
        gamma = store.add("\(name).weight", shape: [channels], zeroInit ? .zeros : .ones, decay: true)
        beta = store.add("\(name).bias", shape: [channels], .zeros, decay: true)
        perTask = tasks != nil
        if let tasks {
            runningMeans = (0..<tasks).map { store.add("\(name).task\($0).running_mean", shape: [channels], .zeros, trainable: false) }
            runningVars = (0..<tasks).map { store.add("\(name).task\($0).running_var", shape: [channels], .ones, trainable: false) }
        } else {
            runningMeans = [store.add("\(name).running_mean", shape: [channels], .zeros, trainable: false)]
            runningVars = [store.add("\(name).running_var", shape: [channels], .ones, trainable: false)]
        }
        mean = [Float](repeating: 0, count: channels)
        invStd = mean
    }

    /// `residual`: added after normalising, before the ReLU (a residual block's last BN).
    /// `layout`: the batch's task groups, which a per-task layer normalises one by one.
    public func forward(_ x: Tensor, training: Bool, residual: Tensor? = nil, layout: BatchLayout? = nil) -> Tensor {
        input = x
        self.training = training
        output.reuse(x.shape)
        let rows = x.count / channels
        let y = output.mutablePointer()
        if perTask, let layout {
            forwardPerTask(x, y: y, residual: residual, layout: layout)
            return output
        }
        store.engine.measure(.batchNorm) {
        if training {
            mean.withUnsafeMutableBufferPointer { m in invStd.withUnsafeMutableBufferPointer { s in
                BatchNorm.forwardTrain(rows: rows, channels: channels, x: x.pointer, gamma: store.value(gamma), beta: store.value(beta),
                                       y: y, mean: m.baseAddress!, invStd: s.baseAddress!, runningMean: store.value(runningMean),
                                       runningVar: store.value(runningVar), momentum: momentum, residual: residual?.pointer, relu: relu, engine: store.engine)
            } }
        } else {
            BatchNorm.forwardEval(rows: rows, channels: channels, x: x.pointer, gamma: store.value(gamma), beta: store.value(beta),
                                  runningMean: store.value(runningMean), runningVar: store.value(runningVar), y: y,
                                  residual: residual?.pointer, relu: relu, engine: store.engine)
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
        if !groups.isEmpty {
            backwardPerTask(dy, dx: dx, reluOutput: reluOutput?.pointer ?? (relu ? output.pointer : nil), rowsPerImage: rows / max(1, groups.last!.range.upperBound))
            input = Tensor(zeros: [0])
            return overwritingGradient ? dy : gradInput
        }
        store.engine.measure(.batchNorm) { mean.withUnsafeBufferPointer { m in invStd.withUnsafeBufferPointer { s in
            BatchNorm.backward(rows: rows, channels: channels, x: input.pointer, dy: dy.pointer, gamma: store.value(gamma),
                               mean: m.baseAddress!, invStd: s.baseAddress!, dx: dx, dGamma: store.gradient(gamma), dBeta: store.gradient(beta),
                               reluOutput: reluOutput?.pointer ?? (relu ? output.pointer : nil), engine: store.engine)
        } } }
        input = Tensor(zeros: [0])
        return overwritingGradient ? dy : gradInput
    }

    private func forwardPerTask(_ x: Tensor, y: UnsafeMutablePointer<Float>, residual: Tensor?, layout: BatchLayout) {
        let perImage = x.count / channels / max(1, layout.count) * channels
        groups = training ? layout.groups : []
        if training { groupMean = layout.groups.map { _ in [Float](repeating: 0, count: channels) }; groupInvStd = groupMean }
        store.engine.measure(.batchNorm) {
            for (i, g) in layout.groups.enumerated() {
                let offset = g.range.lowerBound * perImage, rows = g.range.count * perImage / channels
                let t = min(g.task, runningMeans.count - 1)
                if training {
                    groupMean[i].withUnsafeMutableBufferPointer { m in groupInvStd[i].withUnsafeMutableBufferPointer { s in
                        BatchNorm.forwardTrain(rows: rows, channels: channels, x: x.pointer + offset, gamma: store.value(gamma), beta: store.value(beta),
                                               y: y + offset, mean: m.baseAddress!, invStd: s.baseAddress!, runningMean: store.value(runningMeans[t]),
                                               runningVar: store.value(runningVars[t]), momentum: momentum, residual: residual.map { $0.pointer + offset },
                                               relu: relu, engine: store.engine)
                    } }
                } else {
                    BatchNorm.forwardEval(rows: rows, channels: channels, x: x.pointer + offset, gamma: store.value(gamma), beta: store.value(beta),
                                          runningMean: store.value(runningMeans[t]), runningVar: store.value(runningVars[t]), y: y + offset,
                                          residual: residual.map { $0.pointer + offset }, relu: relu, engine: store.engine)
                }
            }
        }
    }

    /// Each group's gradient with its own statistics; dγ and dβ sum over the groups.
    private func backwardPerTask(_ dy: Tensor, dx: UnsafeMutablePointer<Float>, reluOutput: UnsafePointer<Float>?, rowsPerImage: Int) {
        let perImage = rowsPerImage * channels
        store.engine.measure(.batchNorm) {
            for (i, g) in groups.enumerated() {
                let offset = g.range.lowerBound * perImage
                groupMean[i].withUnsafeBufferPointer { m in groupInvStd[i].withUnsafeBufferPointer { s in
                    BatchNorm.backward(rows: g.range.count * rowsPerImage, channels: channels, x: input.pointer + offset, dy: dy.pointer + offset,
                                       gamma: store.value(gamma), mean: m.baseAddress!, invStd: s.baseAddress!, dx: dx + offset,
                                       dGamma: store.gradient(gamma), dBeta: store.gradient(beta), reluOutput: reluOutput.map { $0 + offset }, engine: store.engine)
                } }
            }
        }
        groups = []
    }
}
