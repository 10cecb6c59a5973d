import MoLATensor

/// What the classifiers need of a backbone: images in, pooled features out.
public protocol Backbone: AnyObject {
    var features: Int { get }
    /// x: batch × input (channels last) → batch × features. With `gates`, adapted layers
    /// mix their adapters by them (MoLA-Router).
    func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates?) -> Tensor
    /// After a training forward: the gradients of the pooled features into the store.
    func backward(_ dPooled: Tensor)
    /// The 1×1 and k×k convolutions (the ones adapters can sit on), by name.
    var convolutions: [(name: String, conv: Conv)] { get }
}

extension ResNet: Backbone {}

/// ShuffleNet V2 (Ma et al. 2018) in torchvision's layout and names: a 3×3 stride-2 stem
/// conv (`conv1`), 3×3 stride-2 max pooling, three stages of units, a 1×1 conv (`conv5`),
/// global average pooling. `config.v1` is the 1.0× network the reference trains on
/// RadImageNet. Adapters go on the 1×1 convolutions of the units (and the stem when asked);
/// depthwise convolutions have groups = C and carry none, as in the reference.
public final class ShuffleNetV2: Backbone {
    public struct Config: Equatable, Sendable {
        public var stem: Int, widths: [Int], repeats: [Int], last: Int
        public init(stem: Int, widths: [Int], repeats: [Int], last: Int) {
            precondition(widths.count == repeats.count && widths.allSatisfy { $0 % 2 == 0 }, "stage widths must be even (units split them in halves)")
            self.stem = stem; self.widths = widths; self.repeats = repeats; self.last = last
        }
        /// ShuffleNet V2 1.0×.
        public static let v1 = Config(stem: 24, widths: [116, 232, 464], repeats: [4, 8, 4], last: 1024)
    }

    public let config: Config
    public let input: FeatureShape
    let stem: Conv, stemBN: BatchNormLayer, conv5: Conv, conv5BN: BatchNormLayer
    let stemPool: MaxPool
    let stemShape: FeatureShape
    let units: [ShuffleUnit]
    let lastShape: FeatureShape
    public var features: Int { config.last }
    var engine: Engine { stem.store.engine }
    private var pooled = Tensor(zeros: [0]), gradLast = Tensor(zeros: [0])

    public init(_ store: ParameterStore, config: Config, input: FeatureShape, adapters: AdapterConfig? = nil, taskNorms: Int? = nil) {
        self.config = config
        self.input = input
        let form = adapters?.form ?? .factorised
        let stemAdapters = adapters.flatMap { $0.stem ? ($0.count, $0.ranks[0], $0.alpha) : nil }
        stem = Conv(store, name: "conv1.0", inChannels: input.channels, outChannels: config.stem, kernel: 3, stride: 2, padding: 1,
                    adapters: stemAdapters, form: form)
        stemBN = BatchNormLayer(store, name: "conv1.1", channels: config.stem, relu: true, tasks: taskNorms)
        stemShape = stem.outputShape(input)
        stemPool = MaxPool(engine: store.engine)
        var shape = stemPool.outputShape(stemShape)
        var units: [ShuffleUnit] = []
        for (s, (width, count)) in zip(config.widths, config.repeats).enumerated() {
            let spec: (Int, Int, Float)? = adapters.flatMap { $0.stages.contains(s) ? ($0.count, $0.ranks[s], $0.alpha) : nil }
            for i in 0..<count {
                let unit = ShuffleUnit(store, name: "stage\(s + 2).\(i)", input: shape, width: width, stride: i == 0 ? 2 : 1,
                                       adapters: spec, form: form, taskNorms: taskNorms)
                units.append(unit)
                shape = unit.outShape
            }
        }
        self.units = units
        conv5 = Conv(store, name: "conv5.0", inChannels: shape.channels, outChannels: config.last, kernel: 1)
        conv5BN = BatchNormLayer(store, name: "conv5.1", channels: config.last, relu: true, tasks: taskNorms)
        lastShape = FeatureShape(height: shape.height, width: shape.width, channels: config.last)
    }

    public var convolutions: [(name: String, conv: Conv)] {
        [("conv1", stem)] + units.flatMap { u in u.convs.map { ("\(u.name).\($0.0)", $0.1) } } + [("conv5", conv5)]
    }

    public func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates? = nil) -> Tensor {
        let h0 = stemBN.forward(stem.forward(x, shape: input, layout: layout, gates: gates), training: layout.training, layout: layout)
        var h = stemPool.forward(h0, shape: stemShape, batch: layout.count)
        for u in units { h = u.forward(h, layout: layout, gates: gates) }
        let unitsOut = FeatureShape(height: lastShape.height, width: lastShape.width, channels: conv5.inChannels)
        h = conv5BN.forward(conv5.forward(h, shape: unitsOut, layout: layout), training: layout.training, layout: layout)
        pooled.reuse([layout.count, features])
        engine.measure(.pooling) {
            Pooling.globalAverageForward(batch: layout.count, pixels: lastShape.pixels, channels: features, x: h.pointer, y: pooled.mutablePointer())
        }
        return pooled
    }

    public func backward(_ dPooled: Tensor) {
        let batch = dPooled.shape[0]
        gradLast.reuse([batch, lastShape.height, lastShape.width, features])
        engine.measure(.pooling) {
            Pooling.globalAverageBackward(batch: batch, pixels: lastShape.pixels, channels: features, dy: dPooled.pointer, dx: gradLast.mutablePointer())
        }
        var g = conv5.backward(conv5BN.backward(gradLast))!
        for u in units.reversed() { g = u.backward(g) }
        _ = stem.backward(stemBN.backward(stemPool.backward(g), overwritingGradient: true), needInputGradient: false)
    }
}

/// One ShuffleNet V2 unit. Stride 1: the channels split in halves; the first passes
/// through, the second goes through branch2 (1×1 → BN → ReLU → 3×3 depthwise → BN → 1×1 →
/// BN → ReLU). Stride 2: branch1 (3×3 depthwise stride 2 → BN → 1×1 → BN → ReLU) and branch2
/// (its depthwise at stride 2) both see the whole input. The halves are then joined and
/// shuffled (`ChannelShuffle.interleave`). Names as torchvision's (`branch2.3` is the
/// depthwise conv: its index in torchvision's Sequential).
final class ShuffleUnit {
    let name: String, stride: Int, half: Int
    let inShape: FeatureShape, midShape: FeatureShape
    let outShape: FeatureShape
    let branch1: (dw: DepthwiseConv, bn1: BatchNormLayer, pw: Conv, bn2: BatchNormLayer)?
    let pw1: Conv, bn1: BatchNormLayer, dw: DepthwiseConv, bn2: BatchNormLayer, pw2: Conv, bn3: BatchNormLayer
    private var first = Tensor(zeros: [0]), second = Tensor(zeros: [0]), output = Tensor(zeros: [0])
    private var dA = Tensor(zeros: [0]), dB = Tensor(zeros: [0]), gradInput = Tensor(zeros: [0])
    private var batch = 0

    init(_ store: ParameterStore, name: String, input: FeatureShape, width: Int, stride: Int, adapters: (Int, Int, Float)?,
         form: AdapterForm, taskNorms: Int?) {
        self.name = name
        self.stride = stride
        half = width / 2
        inShape = input
        let branchIn = stride == 1 ? half : input.channels
        precondition(stride == 2 || input.channels == width, "a stride-1 unit keeps its width")
        if stride == 2 {
            let dw = DepthwiseConv(store, name: "\(name).branch1.0", channels: input.channels, stride: 2)
            branch1 = (dw, BatchNormLayer(store, name: "\(name).branch1.1", channels: input.channels, relu: false, tasks: taskNorms),
                       Conv(store, name: "\(name).branch1.2", inChannels: input.channels, outChannels: half, kernel: 1, adapters: adapters, form: form),
                       BatchNormLayer(store, name: "\(name).branch1.3", channels: half, relu: true, tasks: taskNorms))
        } else {
            branch1 = nil
        }
        pw1 = Conv(store, name: "\(name).branch2.0", inChannels: branchIn, outChannels: half, kernel: 1, adapters: adapters, form: form)
        bn1 = BatchNormLayer(store, name: "\(name).branch2.1", channels: half, relu: true, tasks: taskNorms)
        dw = DepthwiseConv(store, name: "\(name).branch2.3", channels: half, stride: stride)
        bn2 = BatchNormLayer(store, name: "\(name).branch2.4", channels: half, relu: false, tasks: taskNorms)
        pw2 = Conv(store, name: "\(name).branch2.5", inChannels: half, outChannels: half, kernel: 1, adapters: adapters, form: form)
        bn3 = BatchNormLayer(store, name: "\(name).branch2.6", channels: half, relu: true, tasks: taskNorms)
        midShape = FeatureShape(height: input.height, width: input.width, channels: half)
        let out = dw.outputShape(midShape)
        outShape = FeatureShape(height: out.height, width: out.width, channels: width)
    }

    var convs: [(String, Conv)] { (branch1.map { [("branch1.2", $0.pw)] } ?? []) + [("branch2.0", pw1), ("branch2.5", pw2)] }
    var engine: Engine { pw1.store.engine }

    func forward(_ x: Tensor, layout: BatchLayout, gates: AdapterGates?) -> Tensor {
        batch = layout.count
        let training = layout.training
        let outPixels = FeatureShape(height: outShape.height, width: outShape.width, channels: half)
        let a: Tensor, branchInput: Tensor, branchShape: FeatureShape
        if let b1 = branch1 {
            let d = b1.bn1.forward(b1.dw.forward(x, shape: inShape, batch: batch), training: training, layout: layout)
            a = b1.bn2.forward(b1.pw.forward(d, shape: FeatureShape(height: outShape.height, width: outShape.width, channels: inShape.channels),
                                              layout: layout, gates: gates), training: training, layout: layout)
            branchInput = x
            branchShape = inShape
        } else {
            first.reuse([batch, inShape.height, inShape.width, half])
            second.reuse([batch, inShape.height, inShape.width, half])
            ChannelShuffle.split(rows: batch * inShape.pixels, half: half, x: x.pointer, first: first.mutablePointer(), second: second.mutablePointer())
            a = first
            branchInput = second
            branchShape = midShape
        }
        var h = bn1.forward(pw1.forward(branchInput, shape: branchShape, layout: layout, gates: gates), training: training, layout: layout)
        h = bn2.forward(dw.forward(h, shape: midShape, batch: batch), training: training, layout: layout)
        let b = bn3.forward(pw2.forward(h, shape: outPixels, layout: layout, gates: gates), training: training, layout: layout)
        output.reuse([batch, outShape.height, outShape.width, outShape.channels])
        ChannelShuffle.interleave(rows: batch * outShape.pixels, half: half, a: a.pointer, b: b.pointer, into: output.mutablePointer())
        return output
    }

    func backward(_ dy: Tensor) -> Tensor {
        let rows = batch * outShape.pixels
        dA.reuse([batch, outShape.height, outShape.width, half])
        dB.reuse([batch, outShape.height, outShape.width, half])
        ChannelShuffle.deinterleave(rows: rows, half: half, x: dy.pointer, a: dA.mutablePointer(), b: dB.mutablePointer())
        var g = pw2.backward(bn3.backward(dB))!
        g = dw.backward(bn2.backward(g))
        let dBranch2 = pw1.backward(bn1.backward(g))!
        gradInput.reuse([batch, inShape.height, inShape.width, inShape.channels])
        if let b1 = branch1 {
            let d = b1.dw.backward(b1.bn1.backward(b1.pw.backward(b1.bn2.backward(dA))!))
            Elementwise.add(gradInput.count, d.pointer, dBranch2.pointer, into: gradInput.mutablePointer(), engine: engine)
        } else {
            ChannelShuffle.join(rows: batch * inShape.pixels, half: half, first: dA.pointer, second: dBranch2.pointer, into: gradInput.mutablePointer())
        }
        return gradInput
    }
}
