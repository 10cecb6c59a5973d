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
    /// Bottleneck blocks (ResNet-50): each stage's output is 4× its width.
    public var bottleneck: Bool

    public init(stemWidth: Int, widths: [Int], blocks: [Int], imagenetStem: Bool = false, bottleneck: Bool = false) {
        precondition(widths.count == blocks.count && !widths.isEmpty)
        self.stemWidth = stemWidth
        self.widths = widths
        self.blocks = blocks
        self.imagenetStem = imagenetStem
        self.bottleneck = bottleneck
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

/// A residual block: a chain of conv → BN (→ ReLU) layers, plus the input (through a 1×1
/// conv + BN when the shape changes), then ReLU. Basic (ResNet-18/34): 3×3 (stride) → 3×3.
/// Bottleneck (ResNet-50, torchvision's v1.5): 1×1 → 3×3 (stride) → 1×1 to 4× the width.
/// The last BN adds the other branch and applies the ReLU as it normalises: its output is
/// the block's. Layers are named conv1…, bn1… as torchvision's.
public final class ResidualBlock {
    let layers: [(conv: Conv, bn: BatchNormLayer)]
    let shortcut: (conv: Conv, bn: BatchNormLayer)?
    let inShape: FeatureShape
    /// The input shape of each layer of the chain.
    let shapes: [FeatureShape]
    public let outShape: FeatureShape

    init(_ store: ParameterStore, name: String, input: FeatureShape, width: Int, stride: Int, bottleneck: Bool, adapters: (Int, Int, Float)?,
         shortcutAdapters: Bool, taskNorms: Int? = nil, form: AdapterForm = .factorised) {
        inShape = input
        // (kernel, stride, output channels) of each layer of the chain.
        let plan = bottleneck ? [(1, 1, width), (3, stride, width), (1, 1, 4 * width)] : [(3, stride, width), (3, 1, width)]
        var layers: [(conv: Conv, bn: BatchNormLayer)] = [], shapes: [FeatureShape] = [], shape = input
        for (i, (k, st, out)) in plan.enumerated() {
            let conv = Conv(store, name: "\(name).conv\(i + 1)", inChannels: shape.channels, outChannels: out, kernel: k, stride: st,
                            padding: k / 2, adapters: adapters, form: form)
            layers.append((conv, BatchNormLayer(store, name: "\(name).bn\(i + 1)", channels: out, relu: true, tasks: taskNorms)))
            shapes.append(shape)
            shape = conv.outputShape(shape)
        }
        self.layers = layers
        self.shapes = shapes
        outShape = shape
        if stride != 1 || input.channels != shape.channels {
            shortcut = (Conv(store, name: "\(name).shortcut.conv", inChannels: input.channels, outChannels: shape.channels, kernel: 1, stride: stride,
                             adapters: shortcutAdapters ? adapters : nil, form: form),
                        BatchNormLayer(store, name: "\(name).shortcut.bn", channels: shape.channels, relu: false, tasks: taskNorms))
        } else {
            shortcut = nil
        }
    }

    func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates?) -> Tensor {
        let side = shortcut.map {
            $0.bn.forward($0.conv.forward(x, shape: inShape, layout: layout, gates: gates), training: layout.training, layout: layout)
        } ?? x
        var h = x
        for (i, l) in layers.enumerated() {
            let last = i == layers.count - 1
            h = l.bn.forward(l.conv.forward(h, shape: shapes[i], layout: layout, gates: gates), training: layout.training,
                             residual: last ? side : nil, layout: layout)
        }
        return h
    }

    func backward(_ dy: Tensor) -> Tensor {
        // Both branches see dy where the block's output (the last BN's, after the ReLU) was
        // positive. Each conv's input gradient is dead once the BN before it has it, and dy
        // once the shortcut's BN has. The block's input gradient is summed into the first
        // conv's, which nothing else reads.
        let lastOutput = layers[layers.count - 1].bn.output
        var g = layers[layers.count - 1].bn.backward(dy)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            g = layers[i].conv.backward(g)!
            if i > 0 { g = layers[i - 1].bn.backward(g, overwritingGradient: true) }
        }
        let dMain = g
        let into = UnsafeMutablePointer(mutating: dMain.pointer)
        if let shortcut {
            let dSide = shortcut.conv.backward(shortcut.bn.backward(dy, reluOutput: lastOutput, overwritingGradient: true))!
            engine.measure(.elementwise) { Elementwise.add(dMain.count, dMain.pointer, dSide.pointer, into: into, engine: engine) }
        } else {
            engine.measure(.elementwise) { ReLU.addBackward(dy.count, y: lastOutput.pointer, dy: dy.pointer, to: dMain.pointer, into: into, engine: engine) }
        }
        return dMain
    }

    var convs: [Conv] { layers.map(\.conv) + (shortcut.map { [$0.conv] } ?? []) }
    var engine: Engine { layers[0].conv.store.engine }
}

/// The backbone: stem, residual stages, global average pooling → batch × features.
public final class ResNet {
    public let config: BackboneConfig
    public let input: FeatureShape
    let stem: Conv, stemBN: BatchNormLayer
    /// The ImageNet stem's max pooling (nil for the 3×3 stem), and the shape it pools.
    let stemPool: MaxPool?
    let stemShape: FeatureShape
    let blocks: [ResidualBlock]
    public var features: Int { config.widths.last! * (config.bottleneck ? 4 : 1) }
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
        stemShape = stem.outputShape(input)
        stemPool = config.imagenetStem ? MaxPool(engine: store.engine) : nil
        var shape = stemPool?.outputShape(stemShape) ?? stemShape
        var blocks: [ResidualBlock] = []
        for (s, (width, count)) in zip(config.widths, config.blocks).enumerated() {
            for b in 0..<count {
                let block = ResidualBlock(store, name: "\(prefix)stage\(s + 1).block\(b + 1)", input: shape, width: width,
                                          stride: s > 0 && b == 0 ? 2 : 1, bottleneck: config.bottleneck, adapters: spec(stage: s), shortcutAdapters: adapters?.shortcuts ?? false,
                                       taskNorms: taskNorms, form: adapters?.form ?? .factorised)
                blocks.append(block)
                shape = block.outShape
            }
        }
        self.blocks = blocks
        lastShape = shape
    }

    var engine: Engine { stem.store.engine }

    /// Every convolution, in order (for analysis: spectra, parameter counts).
    public var convolutions: [(name: String, conv: Conv)] {
        var out = [("stem", stem)]
        for (i, b) in blocks.enumerated() { for (j, c) in b.convs.enumerated() { out.append(("block\(i + 1).conv\(j + 1)", c)) } }
        return out
    }

    /// x: batch × input (channels last). Returns batch × features. With `gates`, adapted
    /// layers mix their adapters by them (MoLA-Router) and add their gradients to them.
    public func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        pool(forwardBlocks(blocks.indices, forwardStem(x, layout: layout, gates: gates), layout: layout, gates: gates), batch: layout.count)
    }

    public func backward(_ dPooled: Tensor) {
        backwardStem(backwardBlocks(blocks.indices, unpool(dPooled)))
    }

    // The pieces of forward and backward, for models that work between stages (Cross-Stitch).

    /// Each stage's blocks, as index ranges of `blocks`.
    var stageBlocks: [Range<Int>] {
        var start = 0
        return config.blocks.map { n in defer { start += n }; return start..<(start + n) }
    }

    /// The output shape of the stem, then of each stage (the levels of PLE).
    var levelShapes: [FeatureShape] {
        [stemPool?.outputShape(stemShape) ?? stemShape] + stageBlocks.map { blocks[$0.upperBound - 1].outShape }
    }

    func forwardStem(_ x: Tensor, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        let h = stemBN.forward(stem.forward(x, shape: input, layout: layout, gates: gates), training: layout.training, layout: layout)
        return stemPool?.forward(h, shape: stemShape, batch: layout.count) ?? h
    }

    func forwardBlocks(_ range: Range<Int>, _ x: Tensor, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        blocks[range].reduce(x) { $1.forward($0, layout: layout, gates: gates) }
    }

    func pool(_ h: Tensor, batch: Int) -> Tensor {
        pooled.reuse([batch, features])
        engine.measure(.pooling) { Pooling.globalAverageForward(batch: batch, pixels: lastShape.pixels, channels: features, x: h.pointer, y: pooled.mutablePointer()) }
        return pooled
    }

    func unpool(_ dPooled: Tensor) -> Tensor {
        gradLast.reuse([dPooled.shape[0], lastShape.height, lastShape.width, features])
        engine.measure(.pooling) {
            Pooling.globalAverageBackward(batch: dPooled.shape[0], pixels: lastShape.pixels, channels: features, dy: dPooled.pointer,
                                          dx: gradLast.mutablePointer())
        }
        return gradLast
    }

    func backwardBlocks(_ range: Range<Int>, _ dy: Tensor) -> Tensor {
        blocks[range].reversed().reduce(dy) { $1.backward($0) }
    }

    func backwardStem(_ dy: Tensor) {
        let g = stemPool?.backward(dy) ?? dy
        _ = stem.backward(stemBN.backward(g, overwritingGradient: true), needInputGradient: false)
    }
}
