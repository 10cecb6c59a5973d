import Foundation
import MoLAData
import MoLAReport
import MoLAModel
import MoLATensor
import MoLATrain
import Testing

/// torchvision-layout weights in: the committed fixture (scripts/make-parity-fixture.py, made
/// with PyTorch: a ResNet-18 at width 4 with the ImageNet stem, seeded weights, non-trivial
/// batch-norm statistics, an input batch and its eval-mode pooled features).
@Suite struct PretrainedWeightsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func backbone(widths: [Int] = [4, 8, 16, 32], blocks: [Int] = [2, 2, 2, 2], bottleneck: Bool = false) -> (ParameterStore, ResNet) {
        let store = ParameterStore()
        let net = ResNet(store, config: BackboneConfig(stemWidth: widths[0], widths: widths, blocks: blocks, imagenetStem: true, bottleneck: bottleneck),
                         input: FeatureShape(height: 40, width: 40, channels: 3))
        store.allocate(seed: 0)
        return (store, net)
    }

    /// ResNet-18 (basic blocks), ResNet-50 (bottleneck blocks) and ShuffleNet V2 (depthwise
    /// convolutions, channel split and shuffle), torchvision's layouts.
    @Test(arguments: ["resnet18-w4", "resnet50-w2", "shufflenet-v2-small"])
    func forwardEqualsPyTorchOnTheFixture(_ name: String) throws {
        let (store, net): (ParameterStore, any Backbone)
        switch name {
        case "resnet18-w4": (store, net) = Self.backbone()
        case "resnet50-w2": (store, net) = Self.backbone(widths: [2, 4, 8, 16], blocks: [3, 4, 6, 3], bottleneck: true)
        default:
            let s = ParameterStore()
            let shuffle = ShuffleNetV2(s, config: .init(stem: 8, widths: [8, 16, 32], repeats: [4, 8, 4], last: 64), input: FeatureShape(height: 40, width: 40, channels: 3))
            s.allocate(seed: 0)
            (store, net) = (s, shuffle)
        }
        try PretrainedWeights.load(Self.fixtures + "/\(name).safetensors", into: store)
        let io = try SafeTensors.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/\(name)-io.safetensors"))), file: "io").0
        let x = io.first { $0.name == "input_nchw" }!, want = io.first { $0.name == "features" }!
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var nhwc = [Float](repeating: 0, count: x.values.count)
        for i in 0..<n { for ch in 0..<c { for y in 0..<h { for xx in 0..<w {
            nhwc[((i * h + y) * w + xx) * c + ch] = x.values[((i * c + ch) * h + y) * w + xx]
        } } } }
        let out = net.forward(Tensor(shape: [n, h, w, c], scalars: nhwc), layout: BatchLayout(tasks: [Int32](repeating: 0, count: n), training: false), gates: nil)
        let got = Array(UnsafeBufferPointer(start: out.pointer, count: out.count))
        #expect(out.shape == want.shape)
        let worst = zip(got, want.values).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "largest difference from PyTorch: \(worst)")
    }

    @Test func weightsThatDoNotFitAreListed() throws {
        let (wide, _) = Self.backbone(widths: [4, 8, 16, 64])
        #expect { try PretrainedWeights.load(Self.fixtures + "/resnet18-w4.safetensors", into: wide) } throws: { error in
            "\(error)".contains("shapes differ: layer4.0.conv1.weight is 32×16×3×3, the model's 64×16×3×3") && !"\(error)".contains("missing")
        }
        let (short, _) = Self.backbone(widths: [4, 8, 16], blocks: [2, 2, 2])
        #expect { try PretrainedWeights.load(Self.fixtures + "/resnet18-w4.safetensors", into: short) } throws: { error in
            "\(error)".contains("not in the model: layer4.0.conv1.weight")
        }
        let (deep, _) = Self.backbone(blocks: [2, 2, 3, 2])
        #expect { try PretrainedWeights.load(Self.fixtures + "/resnet18-w4.safetensors", into: deep) } throws: { error in
            "\(error)".contains("missing for the model: stage3.block3.conv1.weight")
        }
    }

    @Test func torchvisionNamesMapToOurs() {
        #expect(PretrainedWeights.ourName("conv1.weight") == "stem.conv.weight")
        #expect(PretrainedWeights.ourName("bn1.running_var") == "stem.bn.running_var")
        #expect(PretrainedWeights.ourName("layer2.0.downsample.1.running_mean") == "stage2.block1.shortcut.bn.running_mean")
        #expect(PretrainedWeights.ourName("layer3.1.conv2.weight") == "stage3.block2.conv2.weight")
        #expect(PretrainedWeights.ourName("fc.weight") == nil && PretrainedWeights.ourName("bn1.num_batches_tracked") == nil)
    }
}
