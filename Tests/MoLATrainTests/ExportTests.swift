import Foundation
import MoLAData
import MoLAReport
import MoLAModel
import MoLASupport
import MoLATensor
import MoLATrain
import Testing

@Suite(.serialized) struct ExportTests {
    /// Import → export gives back the fixture's tensors exactly (names, layout, values).
    @Test func importThenExportRoundTrips() throws {
        let store = ParameterStore()
        let net = ResNet(store, config: BackboneConfig(stemWidth: 4, widths: [4, 8, 16, 32], blocks: [2, 2, 2, 2], imagenetStem: true),
                         input: FeatureShape(height: 40, width: 40, channels: 3))
        let model = Classifier(store: store, backbone: net, classes: [10])
        store.allocate(seed: 0)
        let file = PretrainedWeightsTests.fixtures + "/resnet18-w4.safetensors"
        try PretrainedWeights.load(file, into: store)
        let exported = Dictionary(uniqueKeysWithValues: TorchvisionExport.stateDict(model, task: nil).map { ($0.name, $0) })
        let original = try SafeTensors.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), file: file,
                                              skipping: { $0.hasSuffix("num_batches_tracked") }).0.filter { !$0.name.hasPrefix("fc.") }
        #expect(exported.count == original.count)
        for t in original { #expect(exported[t.name] == t, "\(t.name)") }
    }

    /// A MoLA-Grad run exported per task: a plain model (no adapters) loaded from task t's
    /// file gives the run's logits for task t's images.
    @Test func molaGradTaskModelsAreDeployableAlone() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "mola-grad", steps: 8, evalEvery: 8, extra: "batchnorm: per-task")
        let (_, dir) = try TinyData.train(config)
        let files = try TorchvisionExport.export(run: dir, to: tmp.path + "/exported")
        #expect(files.map { URL(fileURLWithPath: $0).lastPathComponent } == ["mnist.safetensors", "optdigits.safetensors"])
        let c = try TrainConfig.load(config)
        let input = FeatureShape(height: 12, width: 12, channels: 1)
        let run = ModelFactory.make(c, input: input, classes: [10, 10], adapterCount: 2)
        _ = try Checkpoint.load(from: dir + "/checkpoints/best", into: run.store, configHash: c.hash)
        var g = RandomGenerator(seed: 4)
        let images = Tensor(shape: [3, 12, 12, 1], scalars: (0..<(3 * 144)).map { _ in g.uniform(-1, 1) })
        for t in 0..<2 {
            var plainConfig = c
            plainConfig.method = .uniform
            plainConfig.batchNorm = nil
            let plain = ModelFactory.make(plainConfig, input: input, classes: [10], adapterCount: 1)
            try PretrainedWeights.load(files[t], into: plain.store)
            let fc = try SafeTensors.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: files[t]))), file: files[t]).0
            let w = fc.first { $0.name == "fc.weight" }!, b = fc.first { $0.name == "fc.bias" }!
            let head = plain.store.entry(named: "heads.0.weight")!, bias = plain.store.entry(named: "heads.0.bias")!
            for o in 0..<10 { for f in 0..<head.shape[0] { plain.store.values[head.offset + f * 10 + o] = w.values[o * head.shape[0] + f] } }
            for o in 0..<10 { plain.store.values[bias.offset + o] = b.values[o] }
            let want = run.forward(images, layout: BatchLayout(tasks: [Int32](repeating: Int32(t), count: 3), training: false))[0]
            let got = plain.forward(images, layout: BatchLayout(tasks: [0, 0, 0], training: false))[0]
            let diff = zip(UnsafeBufferPointer(start: want.pointer, count: want.count), UnsafeBufferPointer(start: got.pointer, count: got.count)).map { abs($0 - $1) }.max()!
            #expect(diff < 1e-4, "task \(t): logits differ by \(diff)")
        }
        let router = TinyData.config(tmp, method: "mola-router", steps: 2, output: "router")
        let (_, routerDir) = try TinyData.train(router)
        #expect(throws: DataError.self) { try TorchvisionExport.export(run: routerDir, to: tmp.path + "/no") }
    }
}
