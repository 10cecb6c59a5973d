import MoLATensor

/// The shape of a ResNet backbone: a stem, then stages of basic residual blocks (the first
/// stage at stride 1, each later one halving the resolution), global average pooling.
/// `resnetMini` is the reference network of the benchmarks; `resnet18` the 2-2-2-2 layout.
/// The stem is a 3×3 conv for small images, or torchvision's (`imagenetStem`): a 7×7
/// stride-2 conv, then 3×3 stride-2 max pooling.
public struct BackboneConfig: Codable, Equatable, Sendable {
    public var stemWidth: Int
    public var widths: [Int]
    public var blocks: [Int]
    public var imagenetStem: Bool

    public init(stemWidth: Int, widths: [Int], blocks: [Int], imagenetStem: Bool = false) {
        precondition(widths.count == blocks.count && !widths.isEmpty)
        self.stemWidth = stemWidth
        self.widths = widths
        self.blocks = blocks
        self.imagenetStem = imagenetStem
    }

    public static let resnetMini = BackboneConfig(stemWidth: 16, widths: [16, 32, 64], blocks: [1, 1, 1])
    public static func resnet18(width: Int = 64) -> BackboneConfig {
        BackboneConfig(stemWidth: width, widths: [width, 2 * width, 4 * width, 8 * width], blocks: [2, 2, 2, 2])
    }
}

/// Where low-rank adapters go, and their size.
public struct AdapterConfig: Codable, Equatable, Sendable {
    /// Number of adapters per adapted convolution (K; one per task for MoLA-Grad).
    public var count: Int
    /// Rank per stage (one entry per stage of the backbone).
    public var ranks: [Int]
    public var alpha: Float
    /// Stages (0-based) whose 3×3 convolutions carry adapters.
    public var stages: [Int]
    /// Whether the stem convolution carries adapters too (MoLA-Grad's reference does).
    public var stem: Bool
    /// Whether 1×1 downsampling convolutions carry adapters too (MoLA-Router's reference does).
    public var shortcuts: Bool
    public var form: AdapterForm

    public init(count: Int, ranks: [Int], alpha: Float = 16, stages: [Int], stem: Bool = false, shortcuts: Bool = false,
                form: AdapterForm = .factorised) {
        self.count = count; self.ranks = ranks; self.alpha = alpha; self.stages = stages; self.stem = stem; self.shortcuts = shortcuts
        self.form = form
    }
}

/// A basic residual block: conv3×3 → BN → ReLU → conv3×3 → BN, plus the input (through a
/// 1×1 conv + BN when the shape changes), then ReLU. The second BN adds the other branch
/// and applies the ReLU as it normalises: its output is the block's.
public final class BasicBlock {
    let conv1: Conv, bn1: BatchNormLayer, conv2: Conv, bn2: BatchNormLayer
    let shortcut: (conv: Conv, bn: BatchNormLayer)?
    let inShape: FeatureShape
    public let outShape: FeatureShape

    init(_ store: ParameterStore, name: String, input: FeatureShape, width: Int, stride: Int, adapters: (Int, Int, Float)?,
         shortcutAdapters: Bool, taskNorms: Int? = nil, form: AdapterForm = .factorised) {
        inShape = input
        conv1 = Conv(store, name: "\(name).conv1", inChannels: input.channels, outChannels: width, kernel: 3, stride: stride, padding: 1, adapters: adapters, form: form)
        bn1 = BatchNormLayer(store, name: "\(name).bn1", channels: width, relu: true, tasks: taskNorms)
        conv2 = Conv(store, name: "\(name).conv2", inChannels: width, outChannels: width, kernel: 3, stride: 1, padding: 1, adapters: adapters, form: form)
        bn2 = BatchNormLayer(store, name: "\(name).bn2", channels: width, relu: true, tasks: taskNorms)
        if stride != 1 || input.channels != width {
            shortcut = (Conv(store, name: "\(name).shortcut.conv", inChannels: input.channels, outChannels: width, kernel: 1, stride: stride,
                             adapters: shortcutAdapters ? adapters : nil, form: form),
                        BatchNormLayer(store, name: "\(name).shortcut.bn", channels: width, relu: false, tasks: taskNorms))
        } else {
            shortcut = nil
        }
        outShape = conv1.outputShape(input)
    }

    func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates?) -> Tensor {
        let h = bn1.forward(conv1.forward(x, shape: inShape, layout: layout, gates: gates), training: layout.training, layout: layout)
        let side = shortcut.map {
            $0.bn.forward($0.conv.forward(x, shape: inShape, layout: layout, gates: gates), training: layout.training, layout: layout)
        } ?? x
        return bn2.forward(conv2.forward(h, shape: outShape, layout: layout, gates: gates), training: layout.training, residual: side, layout: layout)
    }

    func backward(_ dy: Tensor) -> Tensor {
        // Both branches see dy where the block's output (bn2's, after the ReLU) was positive.
        // conv2's input gradient is dead once bn1 has it, and dy once the shortcut's BN has.
        // The block's input gradient is summed into conv1's, which nothing else reads.
        let dMain = conv1.backward(bn1.backward(conv2.backward(bn2.backward(dy))!, overwritingGradient: true))!
        let into = UnsafeMutablePointer(mutating: dMain.pointer)
        if let shortcut {
            let dSide = shortcut.conv.backward(shortcut.bn.backward(dy, reluOutput: bn2.output, overwritingGradient: true))!
            Profile.measure(.elementwise) { Elementwise.add(dMain.count, dMain.pointer, dSide.pointer, into: into) }
        } else {
            Profile.measure(.elementwise) { ReLU.addBackward(dy.count, y: bn2.output.pointer, dy: dy.pointer, to: dMain.pointer, into: into) }
        }
        return dMain
    }

    var convs: [Conv] { [conv1, conv2] + (shortcut.map { [$0.conv] } ?? []) }
}

/// The backbone: stem, residual stages, global average pooling → batch × features.
public final class ResNet {
    public let config: BackboneConfig
    public let input: FeatureShape
    let stem: Conv, stemBN: BatchNormLayer
    /// The ImageNet stem's max pooling (nil for the 3×3 stem), its argmax kept for backward.
    let stemPool: Pooling.Shape?
    private var pooledStem = Tensor(zeros: [0]), stemArgmax: [Int32] = [], gradStem = Tensor(zeros: [0])
    let blocks: [BasicBlock]
    public var features: Int { config.widths.last! }
    private var pooled = Tensor(zeros: [0])
    private var lastShape = FeatureShape(height: 0, width: 0, channels: 0)
    private var gradLast = Tensor(zeros: [0])

    /// - Parameter name: prefix of the parameter names (several backbones in one store).
    /// - Parameter taskNorms: the task count, for batch norm per task (nil: over the whole batch).
    public init(_ store: ParameterStore, name: String = "", config: BackboneConfig, input: FeatureShape, adapters: AdapterConfig? = nil,
                taskNorms: Int? = nil) {
        let prefix = name.isEmpty ? "" : name + "."
        self.config = config
        self.input = input
        func spec(stage: Int) -> (Int, Int, Float)? {
            guard let a = adapters, a.stages.contains(stage) else { return nil }
            return (a.count, a.ranks[stage], a.alpha)
        }
        let stemAdapters = adapters.flatMap { $0.stem ? ($0.count, $0.ranks[0], $0.alpha) : nil }
        let (k, stride, pad) = config.imagenetStem ? (7, 2, 3) : (3, 1, 1)
        stem = Conv(store, name: "\(prefix)stem.conv", inChannels: input.channels, outChannels: config.stemWidth, kernel: k, stride: stride,
                    padding: pad, adapters: stemAdapters, form: adapters?.form ?? .factorised)
        stemBN = BatchNormLayer(store, name: "\(prefix)stem.bn", channels: config.stemWidth, relu: true, tasks: taskNorms)
        var shape = stem.outputShape(input)
        if config.imagenetStem {
            let pool = Pooling.Shape(batch: 1, height: shape.height, width: shape.width, channels: shape.channels, kernel: 3, stride: 2, padding: 1)
            stemPool = pool
            shape = FeatureShape(height: pool.outHeight, width: pool.outWidth, channels: shape.channels)
        } else {
            stemPool = nil
        }
        var blocks: [BasicBlock] = []
        for (s, (width, count)) in zip(config.widths, config.blocks).enumerated() {
            for b in 0..<count {
                let block = BasicBlock(store, name: "\(prefix)stage\(s + 1).block\(b + 1)", input: shape, width: width,
                                       stride: s > 0 && b == 0 ? 2 : 1, adapters: spec(stage: s), shortcutAdapters: adapters?.shortcuts ?? false,
                                       taskNorms: taskNorms, form: adapters?.form ?? .factorised)
                blocks.append(block)
                shape = block.outShape
            }
        }
        self.blocks = blocks
        lastShape = shape
    }

    /// Every convolution, in order (for analysis: spectra, parameter counts).
    public var convolutions: [(name: String, conv: Conv)] {
        var out = [("stem", stem)]
        for (i, b) in blocks.enumerated() { for (j, c) in b.convs.enumerated() { out.append(("block\(i + 1).conv\(j + 1)", c)) } }
        return out
    }

    /// x: batch × input (channels last). Returns batch × features. With `gates`, adapted
    /// layers mix their adapters by them (MoLA-Router) and add their gradients to them.
    public func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        var h = stemBN.forward(stem.forward(x, shape: input, layout: layout, gates: gates), training: layout.training, layout: layout)
        if var pool = stemPool {
            pool.batch = layout.count
            pooledStem.reuse([layout.count, pool.outHeight, pool.outWidth, pool.channels])
            if stemArgmax.count != pool.outputCount { stemArgmax = [Int32](repeating: 0, count: pool.outputCount) }
            let src = h
            Profile.measure(.pooling) { Pooling.maxForward(pool, x: src.pointer, y: pooledStem.mutablePointer(), argmax: &stemArgmax) }
            h = pooledStem
        }
        for b in blocks { h = b.forward(h, layout: layout, gates: gates) }
        pooled.reuse([layout.count, features])
        Profile.measure(.pooling) { Pooling.globalAverageForward(batch: layout.count, pixels: lastShape.pixels, channels: features, x: h.pointer, y: pooled.mutablePointer()) }
        return pooled
    }

    public func backward(_ dPooled: Tensor) {
        gradLast.reuse([dPooled.shape[0], lastShape.height, lastShape.width, features])
        Profile.measure(.pooling) {
            Pooling.globalAverageBackward(batch: dPooled.shape[0], pixels: lastShape.pixels, channels: features, dy: dPooled.pointer,
                                          dx: gradLast.mutablePointer())
        }
        var g = gradLast
        for b in blocks.reversed() { g = b.backward(g) }
        if var pool = stemPool {
            pool.batch = dPooled.shape[0]
            gradStem.reuse([pool.batch, pool.height, pool.width, pool.channels])
            let dy = g
            Profile.measure(.pooling) { Pooling.maxBackward(pool, dy: dy.pointer, argmax: stemArgmax, dx: gradStem.mutablePointer()) }
            g = gradStem
        }
        _ = stem.backward(stemBN.backward(g, overwritingGradient: true), needInputGradient: false)
    }
}
