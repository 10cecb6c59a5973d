import Foundation
import MoLAData
import MoLAReport
import MoLAModel
import MoLASupport
import MoLATensor
import MoLATrain
import Testing

@Suite struct ConfigErrorTests {
    func error(_ yaml: String) -> String {
        let tmp = TempDir()
        let path = tmp.write("c.yaml", yaml)
        do {
            var r = TrainingRun(configFile: path)
            r.progress = false
            r.log = { _ in }
            _ = try r.run()
            return "no error"
        } catch { return "\(error)" }
    }

    /// `--set` reaches every key by its path, typed and checked like the file.
    @Test func overridesReachAnyKey() throws {
        let tmp = TempDir()
        let path = tmp.write("c.yaml", "data: {dataset: \(TinyData.directory)}\nmethod: mola-grad\nadapters: {rank: 4}\n")
        let c = try TrainConfig.load(path, overrides: ["adapters.rank=[2,3,4]", "backbone.widths=[8,16,32]", "optimizer.name=adamw",
                                                        "lr=0.002", "alpha=2", "router.twd_weight=0.5", "epochs=3", "output=runs/x"])
        #expect(c.adapters.ranks == [2, 3, 4] && c.backbone.widths == [8, 16, 32])
        #expect(c.optimizer.kind == .adamw && c.optimizer.learningRate == 0.002 && c.adapters.alpha == 2)
        #expect(c.router.twdWeight == 0.5 && c.epochs == 3 && c.output == "runs/x")
        let other = try TrainConfig.load(path, overrides: ["data.dataset=/elsewhere"])
        #expect(other.data.dataset == "/elsewhere")
        func failure(_ o: String) -> String {
            do { _ = try TrainConfig.load(path, overrides: [o]); return "no error" } catch { return "\(error)" }
        }
        let typo = failure("adapters.rnak=8")
        #expect(typo.contains("rnak") && typo.contains("did you mean 'rank'"), "\(typo)")
        let type = failure("epochs=many")
        #expect(type.contains("epochs") && type.contains("whole number") && !type.contains("line"), "\(type)")
        #expect(failure("epochs").contains("key.path=value"))
    }

    /// `base:` merges a shared file under a config (deeply; the config's own keys win), and
    /// every shipped config set is written that way.
    @Test func baseFilesMergeUnderTheConfig() throws {
        let tmp = TempDir()
        _ = tmp.write("common.yaml", "data: {dataset: \(TinyData.directory)}\nepochs: 5\noptimizer: {name: sgd, lr: 0.05, momentum: 0.8}\n")
        let path = tmp.write("c.yaml", "base: common.yaml\nmethod: mola-grad\noptimizer: {lr: 0.01}\n")
        let c = try TrainConfig.load(path)
        #expect(c.epochs == 5 && c.method == .molaGrad && c.optimizer.learningRate == 0.01 && c.optimizer.momentum == 0.8)
        let missing = tmp.write("m.yaml", "base: nowhere.yaml\n")
        #expect { try TrainConfig.load(missing) } throws: { "\($0)".contains("base file not found") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        for set in ["digits-fashion", "digit-domains", "medmnist", "radimagenet", "vlcs"] {
            for method in ["uniform", "single-task", "mola-grad", "mola-router"] {
                let file = "\(root)/configs/\(set)/\(method).yaml"
                let text = try String(contentsOfFile: file, encoding: .utf8)
                #expect(text.contains("base: common.yaml"), "\(file)")
                let c = try TrainConfig.load(file)
                #expect(c.method.name == method && c.name.hasSuffix(method) && c.data.manifest != nil, "\(file)")
            }
        }
        // Each digit set has a config for every registered method and balancer, named after
        // it, and its pipeline trains every config of the folder.
        for set in ["digits-fashion", "digit-domains"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: "\(root)/configs/\(set)").filter { $0.hasSuffix(".yaml") && $0 != "common.yaml" }
            #expect(Set(names) == Set((Method.all.map(\.name) + Balancer.all.map(\.name) + ["pcgrad-rep-grad"]).map { $0 + ".yaml" }),
                    "\(set): \(names.sorted())")
            for name in names {
                let c = try TrainConfig.load("\(root)/configs/\(set)/\(name)")
                let item = String(name.dropLast(5))
                #expect(c.method.name == item || c.weighting?.name == item || (item == "pcgrad-rep-grad" && c.repGrad == true), "\(set)/\(name)")
            }
            let pipeline = try String(contentsOfFile: "\(root)/pipelines/\(set).yaml", encoding: .utf8)
            #expect(pipeline.contains("foreach: {files: configs/\(set)/*.yaml, except: [common]}"), "\(set) pipeline trains the folder")
        }
        #expect(try TrainConfig.load("\(root)/configs/digits-fashion/mola-grad.yaml").adapters.alpha == 1)
        #expect(try TrainConfig.load("\(root)/configs/medmnist/mola-grad.yaml").adapters.ranks.allSatisfy { $0 == 8 })
        // The reference's experiments: its adapter form, and its task weighting per path.
        for set in ["medmnist", "radimagenet", "vlcs"] {
            #expect(try TrainConfig.load("\(root)/configs/\(set)/mola-grad.yaml").adapters.form == .convLora)
            #expect(try TrainConfig.load("\(root)/configs/\(set)/mola-grad.yaml").taskWeighting == nil)
            #expect(try TrainConfig.load("\(root)/configs/\(set)/uniform.yaml").taskWeighting == .proportional)
        }
    }

    @Test func unknownKeyNamesFileKeyAndFix() {
        let e = error("data: {dataset: \(TinyData.directory)}\nbatch_sise: 32\n")
        #expect(e.contains("c.yaml") && e.contains("batch_sise") && e.contains("did you mean 'batch_size'"), "\(e)")
    }

    /// The new keys' complaints name the key and what to do.
    @Test func newKeysRefuseWhatCannotWork() {
        let d = "data: {dataset: \(TinyData.directory)}\n"
        let missing = error(d + "backbone: {name: resnet18, init: /nonexistent/w.safetensors}\n")
        #expect(missing.contains("backbone.init: /nonexistent/w.safetensors not found") && missing.contains("torch-to-safetensors.py"), "\(missing)")
        let balanced = Method.all.filter(\.takesBalancer).map(\.name)
        #expect(error(d + "method: mola-router\nweighting: pcgrad\n").contains("weighting applies to \(balanced.dropLast().joined(separator: ", ")) and \(balanced.last!)"))
        #expect(error(d + "weighting: pcgrd\n").contains("did you mean 'pcgrad'"))
        #expect(error(d + "batchnorm: per-task\nsync_batchnorm: true\n").contains("cannot be combined with sync_batchnorm"))
        #expect(error(d + "adapters: {form: lora}\n").contains("conv-lora"))
        #expect(error(d + "backbone: {name: shufflenet-v2, widths: [8, 15, 32]}\n").contains("15 is odd"))
        #expect(error(d + "selection: test-loss\n").contains("validation-loss"))
        // The comparison baselines' settings.
        #expect(error(d + "method: dselect-k\nexperts: {count: 3}\n").contains("power-of-two number of experts; 3 is not"))
        #expect(error(d + "method: dselect-k\nexperts: {count: 2, k: 3}\n").contains("k = 3 selectors for 2 experts"))
        #expect(error(d + "method: mmoe\nexperts: {per_task: 1}\n").contains("experts.per_task applies to cgc"))
        #expect(error(d + "method: cgc\nexperts: {gamma: 2}\n").contains("experts.gamma applies to dselect-k"))
        #expect(error(d + "method: uniform\nexperts: {count: 2}\n").contains("applies to mmoe, cgc, ple and dselect-k"))
        #expect(error(d + "method: hydra-lora\nrouter: {twd_weight: 0.1}\n").contains("without task labels"))
        #expect(error(d + "method: hydra-lora\nadapters: {form: conv-lora}\n").contains("shared-a"))
        #expect(error(d + "method: cross-stitch\nbackbone: {name: shufflenet-v2}\n").contains("cross-stitch builds its experts or columns as ResNets"))
        #expect(error(d + "method: cgc\nbatchnorm: per-task\n").contains("cgc has several"))
        #expect(error(d + "weighting: famous\n").contains("did you mean 'famo'"))
    }

    /// HydraLoRA's adapters: one A per adapted layer (no per-adapter index), a B per adapter;
    /// so fewer adapter parameters than MoLA-Router's at the same rank and count.
    @Test func hydraLoraSharesOneAPerLayer() throws {
        let d = "data: {dataset: \(TinyData.directory)}\nbackbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 16], blocks: [1, 1, 1]}\n"
        let tmp = TempDir()
        func model(_ method: String) throws -> ParameterStore {
            let c = try TrainConfig.load(tmp.write("\(method).yaml", d + "method: \(method)\n"))
            return ModelFactory.make(c, input: FeatureShape(height: 12, width: 12, channels: 1), classes: [10, 10], adapterCount: 2).store
        }
        let hydra = try model("hydra-lora"), router = try model("mola-router")
        let names = hydra.entries.map(\.name)
        #expect(names.contains("stage1.block1.conv1.adapter.a") && names.contains("stage1.block1.conv1.adapter.1.b"))
        #expect(!names.contains { $0.contains("adapter.0.a") || $0.contains("adapter.1.a") })
        let a = hydra.entries.filter { $0.name.hasSuffix("adapter.a") }.reduce(0) { $0 + $1.count }
        #expect(ParameterCounts(router).adapters - ParameterCounts(hydra).adapters == a, "one A per layer instead of two")
    }

    @Test func missingDatasetSaysHowToMakeIt() {
        let e = error("data: {dataset: /nonexistent/ds}\n")
        #expect(e.contains("no prepared dataset") && e.contains("mola-prep ingest"), "\(e)")
    }

    @Test func unknownTaskListsTheDatasetsTasks() {
        let e = error("data: {dataset: \(TinyData.directory)}\ntasks: [mnist, pathmnist]\n")
        #expect(e.contains("no task 'pathmnist'") && e.contains("mnist, optdigits"), "\(e)")
    }

    @Test func rankLargerThanChannels() {
        let e = error("data: {dataset: \(TinyData.directory)}\nbackbone: {widths: [8, 8, 8]}\nadapters: {rank: 16}\n")
        #expect(e.contains("rank 16 is larger than stage 0's 8 channels"), "\(e)")
    }

    @Test func imageTooSmallForTheBackbone() {
        let e = error("data: {dataset: \(TinyData.directory)}\nbackbone: {widths: [8, 8, 8, 8, 8], blocks: [1, 1, 1, 1, 1]}\n")
        #expect(e.contains("too small") && e.contains("12×12×1"), "\(e)")
    }
}

@Suite struct AnalysisTests {
    @Test func compareAggregatesSeedsAndMarksTheBest() throws {
        let tmp = TempDir()
        func report(_ method: String, seed: UInt64, _ a: Double, _ b: Double) throws -> String {
            let dir = tmp.path + "/\(method)-\(seed)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let r = RunReport(name: dir, method: method, seed: seed, configHash: "", dataset: "d", tasks: ["x", "y"],
                              test: .init(perTask: ["x": a, "y": b], average: (a + b) / 2), validation: .init(perTask: [:], average: 0),
                              parameters: ParameterCounts(), steps: 1, epochs: 1, bestStep: 1, trainSeconds: 1, trainImagesPerSecond: 1,
                              threads: 2, routerWeights: nil, spectra: [], subRuns: nil)
            try r.write(to: dir, metrics: [])
            return dir
        }
        let dirs = [try report("single-task", seed: 0, 80, 60), try report("mola-grad", seed: 0, 90, 60), try report("mola-grad", seed: 1, 86, 62)]
        let c = try Comparison.of(runs: dirs)
        #expect(c.rows.map(\.method) == ["single-task", "mola-grad"])
        let grad = c.rows[1]
        #expect(grad.mean == [88, 61])
        #expect(abs(grad.std[0]! - 8.0.squareRoot()) < 1e-9)
        #expect(abs(grad.deltaM! - 100 * ((88 - 80) / 80.0 + (61 - 60) / 60.0) / 2) < 1e-9)
        #expect(c.markdown.contains("**88.00 ± 2.83**"))
        #expect(c.markdown.contains("| single-task | 80.00 | 60.00 | 70.00 | – | +0.00 |"))
    }

    /// The results page says, from the reports alone, what made the runs, on what data,
    /// with which shared settings, on which machine and when; a second write gives the same
    /// bytes; with more methods than the palette has colours its figure plots one bar per method.
    @Test func resultsPageSaysHowTheRunsWereMade() throws {
        let tmp = TempDir()
        func report(_ method: String, seed: UInt64, lr: String, finished: String, accuracy: Double = 90) throws -> String {
            let dir = tmp.path + "/runs/\(method)-\(seed)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var r = RunReport(name: dir, method: method, seed: seed, configHash: "", dataset: "datasets/dd", tasks: ["x", "y"],
                              test: .init(perTask: ["x": accuracy, "y": 80], average: (accuracy + 80) / 2), validation: .init(perTask: [:], average: 0),
                              parameters: ParameterCounts(), steps: 304, epochs: 8, bestStep: 1, trainSeconds: 100, trainImagesPerSecond: 1,
                              threads: 2, routerWeights: nil, spectra: [], subRuns: nil,
                              receipt: .init(dataset: "datasets/dd", machine: "Test CPU (family 1, model 2), AVX2+FMA, 2 cores",
                                             finished: ISO8601DateFormatter().date(from: finished)!))
            r.settings = ["batch_size": "128", "optimizer.lr": lr, "backbone.name": "resnet-mini"]
            try r.write(to: dir, metrics: [])
            return dir
        }
        let dirs = [try report("uniform", seed: 0, lr: "0.05", finished: "2026-01-01T10:00:00Z"),
                    try report("uniform", seed: 1, lr: "0.05", finished: "2026-01-02T10:00:00Z"),
                    try report("mola-grad", seed: 0, lr: "0.01", finished: "2026-01-01T12:00:00Z", accuracy: 88)]
        let page = tmp.path + "/docs/results/dd.md"
        try Comparison.of(runs: dirs).writePage(to: page, title: "dd: two methods", madeBy: "mola-pipeline run pipelines/dd.yaml")
        let text = try String(contentsOfFile: page, encoding: .utf8)
        for line in ["# dd: two methods\n", "Made by `mola-pipeline run pipelines/dd.yaml`",
                     "- **Runs**: 3 runs, 2 rows; seeds 0, 1; steps per run: 304; train time of all runs: 5 min\n",
                     "- **Data**: `datasets/dd`; tasks x, y; index.json SHA-256 `unreadable: data…`\n",
                     "- **Settings every run shares**: backbone.name: resnet-mini, batch_size: 128\n",
                     "- **Machine**: Test CPU (family 1, model 2), AVX2+FMA, 2 cores; threads 2\n",
                     "- **Finished**: 2026-01-01 to 2026-01-02\n", "- **Tool**: mola-train \(MoLAVersion.string)\n",
                     "| uniform | **90.00 ± 0.00** | **80.00 ± 0.00** |", "| mola-grad | 88.00 | **80.00** |", "![test accuracy per method](dd/test-accuracy.svg)"] {
            #expect(text.contains(line), "\(line) in\n\(text)")
        }
        let figure = try String(contentsOfFile: tmp.path + "/docs/results/dd/test-accuracy.svg", encoding: .utf8)
        #expect(figure.contains(">x</text>") && figure.contains(">average</text>"), "a few methods: bars per task")
        try Comparison.of(runs: dirs).writePage(to: page, title: "dd: two methods", madeBy: "mola-pipeline run pipelines/dd.yaml")
        #expect(try String(contentsOfFile: page, encoding: .utf8) == text)

        let many = try (0..<11).map { try report("m\($0)", seed: 0, lr: "0.05", finished: "2026-01-01T10:00:00Z") }
        try Comparison.of(runs: many).writePage(to: page, title: "many", madeBy: "x")
        let bars = try String(contentsOfFile: tmp.path + "/docs/results/dd/test-accuracy.svg", encoding: .utf8)
        #expect(bars.contains("Average test accuracy over tasks") && bars.contains(">m10</text>") && !bars.contains(">x</text>"))
    }

    @Test func safetensorsRoundTrip() throws {
        let t = [SafeTensors.Tensor(name: "a.b", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), SafeTensors.Tensor(name: "c", shape: [1], values: [-7])]
        let bytes = SafeTensors.encode(t, metadata: ["k": "v"])
        let header = bytes[0..<8].withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        #expect((8 + header) % 8 == 0)
        let (back, meta) = try SafeTensors.decode(bytes, file: "x")
        #expect(back == t && meta == ["k": "v"])
        #expect(throws: DataError.self) { try SafeTensors.decode(Array(bytes.prefix(bytes.count - 4)), file: "x") }
    }

    /// float64 tensors (a balancer's state) round-trip to the bit, are refused where a
    /// caller reads float32 only, and are where the format puts them: numpy reads each one
    /// from the header's offsets as little-endian float64.
    @Test func safetensorsFloat64() throws {
        let d = [1 / 3.0, -2.5e-300, .pi, 1e300]
        let t = [SafeTensors.Tensor(name: "f", shape: [1], values: [2]), SafeTensors.Tensor(name: "moco.y", shape: [2, 2], float64: d)]
        let bytes = SafeTensors.encode(t)
        #expect(try SafeTensors.decode(bytes, file: "x", float64: true).tensors == t)
        #expect(throws: DataError.self) { try SafeTensors.decode(bytes, file: "x") }
        struct Case: Encodable { var bytes: [UInt8] }
        struct Answer: Decodable { var dtype: String; var shape: [Int]; var values: [Double] }
        let peer = try askPython("""
            import json, struct, sys
            import numpy as np
            raw = bytes(json.load(open(sys.argv[1]))["bytes"])
            n = struct.unpack("<Q", raw[:8])[0]
            header = json.loads(raw[8:8 + n])
            e = header["moco.y"]
            a, b = e["data_offsets"]
            print(json.dumps({"dtype": e["dtype"], "shape": e["shape"], "values": np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f8").tolist()}))
            """, cases: Case(bytes: bytes), as: Answer.self)
        #expect(peer.dtype == "F64" && peer.shape == [2, 2] && peer.values == d)
    }

    /// A layer's singular values against numpy's SVD of its C_out × (k·k·C_in) matrix: a
    /// square-ish 3×3 conv (10 rows: a last block of two), a wide one, and one of rank 4 (its zero values at the Gram
    /// route's floor, √ε of the largest).
    @Test func spectrumMatchesNumpy() throws {
        struct Case: Codable { var rows: Int; var columns: Int; var w: [Float] }  // w: columns × rows (our layout)
        var rng = RandomGenerator(seed: 21)
        var cases: [Case] = []
        var convs: [Conv] = []
        for (cin, cout, rank) in [(2, 10, 0), (64, 48, 0), (8, 24, 4)] {
            let store = ParameterStore()
            let conv = Conv(store, name: "c", inChannels: cin, outChannels: cout, kernel: 3)
            store.allocate(seed: 0)
            let cols = 9 * cin, w = store.value(conv.weight)
            if rank == 0 {
                for i in 0..<(cols * cout) { w[i] = Float(rng.nextDouble() * 2 - 1) }
            } else {  // a sum of `rank` outer products
                let u = (0..<(rank * cols)).map { _ in Float(rng.nextDouble() - 0.5) }, v = (0..<(rank * cout)).map { _ in Float(rng.nextDouble() - 0.5) }
                for j in 0..<cols { for o in 0..<cout { w[j * cout + o] = (0..<rank).reduce(0) { $0 + u[$1 * cols + j] * v[$1 * cout + o] } } }
            }
            cases.append(Case(rows: cout, columns: cols, w: Array(UnsafeBufferPointer(start: w, count: cols * cout))))
            convs.append(conv)
        }
        let peer = try askPython("""
            import json, sys
            import numpy as np
            out = []
            for c in json.load(open(sys.argv[1])):
                m = np.array(c["w"], dtype=np.float32).astype(np.float64).reshape(c["columns"], c["rows"]).T
                out.append(np.linalg.svd(m, compute_uv=False).tolist())
            print(json.dumps(out))
            """, cases: cases, as: [[Double]].self)
        for (conv, want) in zip(convs, peer) {
            let s = LayerSpectrum.analyse(name: "c", conv: conv).shared
            #expect(abs(s.top - want[0]) <= 1e-9 * want[0], "σ₁ \(s.top) vs numpy \(want[0])")
            let got = (s.values ?? []).map { $0 * s.top }
            #expect(got.count == want.count)
            let worst = zip(got, want).map { abs($0 - $1) / want[0] }.max()!
            #expect(worst < 1e-7, "largest difference relative to σ₁: \(worst)")
        }
    }

    /// Singular values of known matrices: K99 and σ₁ as the paper defines them.
    @Test(arguments: [([3.0, 4.0], 2, 4.0), ([1.0, 0.001], 1, 1.0), ([2.0, 2.0], 2, 2.0)])
    func spectrumOfAKnownWeight(_ diagonal: [Double], _ k99: Int, _ top: Double) {
        let store = ParameterStore()
        let conv = Conv(store, name: "c", inChannels: 3, outChannels: 2, kernel: 1)
        store.allocate(seed: 0)
        // Weight stored cin × cout; as the C_out × C_in matrix it is diag(diagonal) padded.
        let w = store.value(conv.weight)
        for i in 0..<6 { w[i] = 0 }
        w[0 * 2 + 0] = Float(diagonal[0])
        w[1 * 2 + 1] = Float(diagonal[1])
        let s = LayerSpectrum.analyse(name: "c", conv: conv)
        #expect(s.rows == 2 && s.columns == 3)
        #expect(s.shared.k99 == k99)
        #expect(abs(s.shared.top - top) < 1e-5)
        #expect(s.adapted.isEmpty)
    }

    /// Adapter growth ‖ΔW_t‖_F / ‖W‖_F on a hand-computed case: W = diag(3, 4) (norm 5),
    /// adapter 0's ΔW = A·B with one entry 2 → 0.4; adapter 1 untouched (B = 0) → 0.
    @Test func adapterGrowthOfAKnownCase() {
        let store = ParameterStore()
        let conv = Conv(store, name: "c", inChannels: 2, outChannels: 2, kernel: 1, adapters: (count: 2, rank: 1, alpha: 1))
        store.allocate(seed: 0)
        let w = store.value(conv.weight)
        (w[0], w[1], w[2], w[3]) = (3, 0, 0, 4)
        let ad = conv.adapters!
        #expect(LayerSpectrum.adapterGrowth([("c", conv)]) == [0, 0], "B starts at zero")
        let a = store.value(ad.a[0]), b = store.value(ad.b[0])
        (a[0], a[1]) = (1, 0)
        (b[0], b[1]) = (0, 2)
        let g = LayerSpectrum.adapterGrowth([("c", conv)])
        #expect(abs(g[0] - 0.4) < 1e-7 && g[1] == 0, "\(g)")
    }

    /// The near-chance warning: three evaluations in a row within 2 points of chance, once.
    @Test func stuckAtChanceNeedsThreeEvaluationsInARow() {
        var streaks: [Int] = []
        let classes = [10, 4]  // chance 10% and 25%
        #expect(Trainer.stuckAtChance([11.9, 30], classes: classes, streaks: &streaks) == [])
        #expect(Trainer.stuckAtChance([10.0, 27.0], classes: classes, streaks: &streaks) == [])
        #expect(Trainer.stuckAtChance([12.0, 26.0], classes: classes, streaks: &streaks) == [0])
        #expect(Trainer.stuckAtChance([9.0, 20.0], classes: classes, streaks: &streaks) == [1])
        #expect(Trainer.stuckAtChance([50.0, 24.0], classes: classes, streaks: &streaks) == [])
        #expect(streaks == [0, 3 + 1])
    }
}

/// The reference's adapter form against numpy: W + scale·reshape(B·A, C_out×C_in×k×k),
/// in our (kh, kw, C_in) × C_out layout.
@Suite struct ConvLoraLayoutTests {
    @Test func mergedWeightEqualsTheReshapeOfBA() throws {
        let store = ParameterStore()
        let conv = Conv(store, name: "c", inChannels: 3, outChannels: 5, kernel: 3, adapters: (count: 2, rank: 2, alpha: 4), form: .convLora)
        store.allocate(seed: 1)
        var g = RandomGenerator(seed: 2)
        let ad = conv.adapters!
        #expect(store.entry(ad.a[1]).shape == [6, 9] && store.entry(ad.b[1]).shape == [15, 6])
        for e in store.entries where e.name.hasSuffix(".b") { for i in 0..<e.count { store.values[e.offset + i] = g.uniform(-1, 1) } }
        func values(_ p: ParameterRef) -> [Float] { Array(UnsafeBufferPointer(start: store.value(p), count: p.count)) }
        let merged = conv.effectiveWeight(1)
        let input: [String: [Float]] = ["w": values(conv.weight), "a": values(ad.a[1]), "b": values(ad.b[1]), "merged": merged]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: input), as: UTF8.self)
        let script = """
            import json, sys, numpy as np
            d = json.loads(sys.stdin.read())
            w = np.array(d["w"]).reshape(3, 3, 3, 5)                    # kh, kw, cin, cout
            a = np.array(d["a"]).reshape(6, 9); b = np.array(d["b"]).reshape(15, 6)
            delta = (b @ a).reshape(5, 3, 3, 3) * (4 / 2)               # cout, cin, kh, kw (loralib)
            want = w + delta.transpose(2, 3, 1, 0)
            got = np.array(d["merged"]).reshape(3, 3, 3, 5)
            print(np.abs(want - got).max())
            """
        let r = try run("bash", ["-c", "python3 -c '\(script)' <<'JSON'\n\(json)\nJSON"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(Double(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))! < 1e-5, "\(r.stdout)")
    }
}

/// Task-balanced sampling: p_t ∝ n_t^(1/T) over an epoch as long as the data.
@Suite struct SamplingTests {
    @Test func temperatureSetsTheTaskShares() {
        let tasks = [Int32](repeating: 0, count: 900) + [Int32](repeating: 1, count: 90) + [Int32](repeating: 2, count: 10)
        func shares(_ t: Double) -> [Double] {
            let order = EpochOrder(tasks: tasks, seed: 1, epoch: 0, temperature: t)
            #expect(order.indices.count == tasks.count)
            var n = [0.0, 0.0, 0.0]
            for i in order.indices { n[Int(tasks[i])] += 1 }
            return n.map { $0 / Double(tasks.count) }
        }
        let proportional = shares(1), equal = shares(1e6), sqrt = shares(2)
        #expect(abs(proportional[0] - 0.9) < 0.03 && abs(proportional[2] - 0.01) < 0.01, "\(proportional)")
        #expect(equal.allSatisfy { abs($0 - 1.0 / 3) < 0.05 }, "\(equal)")
        let want = [30.0, 90.0.squareRoot(), 10.0.squareRoot()].map { $0 / (30 + 90.0.squareRoot() + 10.0.squareRoot()) }
        #expect(zip(sqrt, want).allSatisfy { abs($0 - $1) < 0.04 }, "\(sqrt) vs \(want)")
        // A function of (seed, epoch) alone; the small task's records all appear, cycled.
        let a = EpochOrder(tasks: tasks, seed: 1, epoch: 3, temperature: 2), b = EpochOrder(tasks: tasks, seed: 1, epoch: 3, temperature: 2)
        #expect(a == b && a != EpochOrder(tasks: tasks, seed: 1, epoch: 4, temperature: 2))
        #expect(Set(a.indices.filter { tasks[$0] == 2 }) == Set(990..<1000))
    }
}
