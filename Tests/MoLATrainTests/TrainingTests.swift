import Foundation
import MoLAData
import MoLAReport
import MoLASupport
import MoLATrain
import Testing

/// Every method trains on real digits, checkpoints, resumes exactly and reports.
/// Serialized: each run uses both cores.
@Suite(.serialized) struct TrainingTests {
    @Test(arguments: Method.all.map(\.name))
    func everyMethodLearnsAndReports(_ method: String) throws {
        let m = try #require(Method.named(method))
        let tmp = TempDir()
        // 40 steps: MTAN's masks (about ½ at the start) slow its first steps; at 24 it was at 14%.
        // LTB over 2 planned epochs, so its warm-up (1% of them) ends after a step, and 80
        // steps: until its logits part, each step draws the columns' parents anew (at 40 it
        // was at 19%).
        let ltb = method == "ltb"
        let (outcome, dir) = try TinyData.train(TinyData.config(tmp, method: method, steps: ltb ? 80 : 40, evalEvery: ltb ? 20 : 10,
                                                                epochs: ltb ? 2 : 1000))
        #expect(outcome == .finished)
        let report = try RunReport.read(dir)
        #expect(report.method == method)
        #expect(report.tasks == ["mnist", "optdigits"])
        #expect(Set(report.test.perTask.keys) == ["mnist", "optdigits"])
        #expect(report.test.average > 20, "40 steps on digits should beat chance (10%) clearly: \(report.test.average)")
        #expect(report.parameters.total == report.parameters.backbone + report.parameters.adapters + report.parameters.router + report.parameters.heads)
        let adapted = m.adapters != nil
        #expect((report.parameters.adapters > 0) == adapted)
        // Routers and gates: the adapter routers, the experts' gates, Cross-Stitch's units.
        #expect((report.parameters.router > 0) == (m.mixes != nil || m.backbones == .several))
        #expect(!report.spectra.isEmpty)
        #expect((report.routerWeights != nil) == (m.mixes != nil))
        #expect(report.routerWeightsOver == m.mixes?.rawValue)
        if method == "cross-stitch" {  // α (one T×T unit after the stem and after stages 1, 2) moved from its start
            let stitch = try #require(metricsLines(dir).last { $0["stitch"] != nil }?["stitch"] as? [[Double]])
            #expect(stitch.count == 3 && stitch.allSatisfy { $0.count == 4 } && stitch[0] != [0.9, 0.1, 0.1, 0.9].map { Double(Float($0)) }, "\(stitch)")
        }
        if method == "ltb" {  // each column's parent probabilities, moved from the equal start
            let parents = try #require(metricsLines(dir).last { $0["stitch"] != nil }?["stitch"] as? [[Double]])
            #expect(parents.count == 3 && parents.allSatisfy { $0.count == 4 && abs($0[0] + $0[1] - 1) < 1e-6 && abs($0[2] + $0[3] - 1) < 1e-6 })
            #expect(parents.contains { $0 != [0.5, 0.5, 0.5, 0.5] }, "\(parents)")
        }
        if let w = report.routerWeights {  // each task's mean weights sum to 1; CGC's task experts only serve their task
            #expect(w.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 }, "\(w)")
            if method == "cgc" || method == "ple" { #expect(w.count == 2 && w[0].count == 3 && w[0][2] == 0 && w[1][1] == 0, "\(w)") }
        }
        // Adapted layers: their singular-value distributions, W's and every W+ΔW_t's.
        let adaptedLayers = report.spectra.filter { !$0.adapted.isEmpty }
        #expect(adaptedLayers.allSatisfy { layer in
            layer.shared.values?.first == 1 && layer.adapted.allSatisfy { ($0.values?.count ?? 0) == layer.rows && $0.values?.first == 1 }
        })
        let plots = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/spectra")) ?? []
        #expect(plots.count == adaptedLayers.count, "\(plots)")
        if let first = plots.sorted().first {
            let svg = try String(contentsOfFile: dir + "/spectra/" + first, encoding: .utf8)
            #expect(svg.contains("K99") && svg.contains("W+ΔW_0"))
        }
        for f in ["report.md", "report.json", "report.html", "test-accuracy.svg"] { #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f)") }
        #expect(FileManager.default.fileExists(atPath: dir + "/adapter-growth.svg") == adapted)
        // Every multi-task model's evaluations carry the conflict diagnostics (MoLA-Router's too).
        #expect(m.modelPerTask || metricsLines(dir).last { $0["val_average"] != nil }?["conflict_cosine"] != nil)
        // Loss decreases: the first evaluation window against the last (per model).
        let runs = m.modelPerTask ? report.subRuns!.map { dir + "/" + $0 } : [dir]
        for r in runs {
            let losses = metricsLines(r).compactMap { $0["train_loss"] as? Double }
            #expect(losses.count == 4)
            #expect(losses.last! < losses.first!, "train loss \(losses) in \(r)")
            for f in ["loss.svg", "accuracy.svg", "spectra.svg", "checkpoints/best/model.safetensors"] {
                #expect(FileManager.default.fileExists(atPath: r + "/" + f), "\(f)")
            }
        }
    }

    /// `batchnorm: per-task`: MoLA-Grad trains with per-task statistics, the checkpoint
    /// holds each task's running averages, and compare gives the variant its own row.
    @Test func perTaskBatchNormTrainsAndIsItsOwnRow() throws {
        let tmp = TempDir()
        let (_, shared) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 24, evalEvery: 8, output: "shared"))
        let (_, perTask) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 24, evalEvery: 8, extra: "batchnorm: per-task", output: "per-task"))
        let report = try RunReport.read(perTask)
        #expect(report.variant == "per-task BN" && report.test.average > 20, "\(report.test.perTask)")
        let names = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: perTask + "/checkpoints/best/model.safetensors"))), file: "x").0.map(\.name)
        #expect(names.contains("stem.bn.task1.running_mean") && !names.contains("stem.bn.running_mean"))
        let c = try Comparison.of(runs: [shared, perTask])
        #expect(c.rows.map(\.method) == ["mola-grad", "mola-grad + per-task BN"])
    }

    /// The reference's network shapes: torchvision's ImageNet stem, conv-lora adapters, and
    /// `backbone.init` refusing weights of another network by name.
    @Test func imagenetStemConvLoraAndInitTrain() throws {
        let tmp = TempDir()
        let backbone = "backbone: {name: resnet18, stem: imagenet, stem_width: 8, widths: [8, 8, 16, 16]}"
        let config = TinyData.config(tmp, method: "mola-grad", steps: 60, evalEvery: 20).replacingOccurrences(of: ".yaml", with: "")
        var text = try String(contentsOfFile: config + ".yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "backbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 16], blocks: [1, 1, 1]}", with: backbone)
            .replacingOccurrences(of: "adapters: {rank: 2, alpha: 4}", with: "adapters: {rank: 2, alpha: 4, form: conv-lora}")
        let file = tmp.write("imagenet.yaml", text)
        let (_, dir) = try TinyData.train(file)
        let report = try RunReport.read(dir)
        // A 7×7 stride-2 stem and max pooling leave 3×3 of a 12×12 digit: slow, but learning.
        let losses = metricsLines(dir).compactMap { $0["train_loss"] as? Double }
        #expect(losses.count == 3 && losses.last! < losses.first!, "\(losses)")
        #expect(report.test.average > 15, "\(report.test.perTask)")
        #expect(report.parameters.adapters > 0)
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures/resnet18-w4.safetensors"
        let bad = tmp.write("init.yaml", text.replacingOccurrences(of: "stem: imagenet,", with: "stem: imagenet, init: \(fixture),"))
        #expect { try TinyData.train(bad) } throws: { "\($0)".contains("shapes differ: conv1.weight is 4×3×7×7, the model's 8×1×7×7") }
    }

    /// Task-balanced sampling trains, and a run interrupted mid-epoch resumes to the same
    /// weights (the order is a function of seed and epoch).
    @Test func balancedSamplingTrainsAndResumesExactly() throws {
        let tmp = TempDir()
        let whole = TinyData.config(tmp, method: "mola-grad", steps: 16, evalEvery: 8, extra: "sampling: {temperature: 3}", output: "whole")
        let parts = TinyData.config(tmp, method: "mola-grad", steps: 16, evalEvery: 8, extra: "sampling: {temperature: 3}", output: "parts")
        let (_, a) = try TinyData.train(whole)
        _ = try TinyData.train(parts, stopAfter: 5)
        let (_, b) = try TinyData.train(parts, resume: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: a + "/checkpoints/latest/model.safetensors"))
                == Data(contentsOf: URL(fileURLWithPath: b + "/checkpoints/latest/model.safetensors")))
        #expect(try RunReport.read(a).variant == "sampling T=3")
    }

    /// `selection: validation-loss` keeps the checkpoint of the lowest validation loss;
    /// `loss: {task_weighting: proportional}` trains (the reference's uniform path).
    @Test func selectionByValidationLossAndProportionalWeighting() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 24, evalEvery: 6, extra: "selection: validation-loss\nloss: {task_weighting: proportional}")
        let (_, dir) = try TinyData.train(config)
        let validations = metricsLines(dir).filter { $0["val_loss"] != nil }
        let best = validations.min { ($0["val_loss"] as! Double) < ($1["val_loss"] as! Double) }!
        #expect(try RunReport.read(dir).bestStep == best["step"] as! Int)
        let losses = validations.compactMap { $0["train_loss"] as? Double }
        #expect(losses.count == 4 && losses.last! < losses.first!, "\(losses)")
    }

    /// `selection: validation-auc` keeps the checkpoint of the best mean validation AUC; every
    /// evaluation logs AUC and balanced accuracy per task, and the report gives the test
    /// split's AUC, balanced accuracy and confusion matrices, whose counts are the split's.
    @Test func selectionByValidationAUCAndTheReportsMetrics() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "mola-grad", steps: 24, evalEvery: 6, extra: "selection: validation-auc")
        let (_, dir) = try TinyData.train(config)
        let validations = metricsLines(dir).filter { $0["val_auc_average"] != nil }
        #expect(validations.count == 4)
        let best = validations.max { ($0["val_auc_average"] as! Double) < ($1["val_auc_average"] as! Double) }!
        let report = try RunReport.read(dir)
        #expect(report.bestStep == best["step"] as! Int)
        #expect(validations.allSatisfy { ($0["val_auc"] as? [String: Double])?.count == 2 && ($0["val_balanced_accuracy"] as? [String: Double])?.count == 2 })
        let test = try DatasetReader(directory: TinyData.directory).load(.test)
        for (t, task) in report.tasks.enumerated() {
            let m = try #require(report.testMetrics?[task])
            #expect(m.confusion.flatMap { $0 }.reduce(0, +) == test.tasks.filter { $0 == Int32(t) }.count)
            #expect(m.confusion.count == 10 && (m.auc ?? 0) > 0.5, "\(task): AUC \(m.auc ?? -1)")
            // Accuracy from the confusion matrix is the report's accuracy.
            let correct = m.confusion.indices.map { m.confusion[$0][$0] }.reduce(0, +)
            #expect(abs(100 * Double(correct) / Double(test.tasks.filter { $0 == Int32(t) }.count) - report.test.perTask[task]!) < 1e-9)
        }
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        #expect(md.contains("## AUC and balanced accuracy (test)") && md.contains("confusion/00-mnist.svg") && FileManager.default.fileExists(atPath: dir + "/confusion/01-optdigits.svg"))
    }

    /// ShuffleNet V2 (the reference's RadImageNet backbone) trains with MoLA-Grad adapters
    /// on its 1×1 convolutions, and its run exports as a torchvision state dict.
    @Test func shuffleNetTrainsAndExports() throws {
        let tmp = TempDir()
        let file = TinyData.config(tmp, method: "mola-grad", steps: 40, evalEvery: 20)
        let text = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(
            of: "backbone: {name: resnet-mini, stem_width: 8, widths: [8, 12, 16], blocks: [1, 1, 1]}",
            with: "backbone: {name: shufflenet-v2, stem_width: 8, widths: [8, 16, 32], blocks: [1, 2, 1], last_width: 32}")
        let (_, dir) = try TinyData.train(tmp.write("shuffle.yaml", text))
        let losses = metricsLines(dir).compactMap { $0["train_loss"] as? Double }
        #expect(losses.count == 2 && losses.last! < losses.first!, "\(losses)")
        let report = try RunReport.read(dir)
        #expect(report.parameters.adapters > 0 && report.test.average > 15, "\(report.test.perTask)")
        let files = try TorchvisionExport.export(run: dir, to: tmp.path + "/out")
        let names = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: files[0]))), file: files[0]).0.map(\.name)
        #expect(names.contains("stage2.0.branch1.0.weight") && names.contains("conv5.1.running_var") && names.contains("fc.weight"))
    }

    /// `mola-train eval` on the training dataset reproduces the report's test figures.
    @Test(arguments: ["mola-grad", "single-task"])
    func evalReproducesTheReport(_ method: String) throws {
        let tmp = TempDir()
        let (_, dir) = try TinyData.train(TinyData.config(tmp, method: method, steps: 8))
        let report = try RunReport.read(dir)
        let e = try Evaluator.evaluate(run: dir, dataset: TinyData.directory, split: .test, checkpoint: "best")
        #expect(e.perTask == report.test.perTask)
        #expect(e.images > 0)
    }

    /// Training records every log_every steps give the curves their shape.
    @Test func trainingRecordsEveryLogEverySteps() throws {
        let tmp = TempDir()
        let (_, dir) = try TinyData.train(TinyData.config(tmp, method: "uniform", steps: 12, evalEvery: 6, extra: "log_every: 2"))
        let lines = metricsLines(dir)
        let train = lines.filter { $0["kind"] as? String == "train" }
        #expect(train.compactMap { $0["step"] as? Int } == [2, 4, 6, 8, 10, 12])
        #expect(train.allSatisfy { ($0["loss"] as? Double)?.isFinite == true && $0["accuracy"] is Double && $0["learning_rate"] is Double })
        #expect(lines.filter { $0["val_average"] != nil }.count == 2)  // validation records as before
        let svg = try String(contentsOfFile: dir + "/loss.svg", encoding: .utf8)
        #expect(svg.contains("validation loss") && svg.contains("train loss (smoothed)"))
        let points = svg.components(separatedBy: "points=\"").dropFirst().map { $0.prefix { $0 != "\"" }.split(separator: " ").count }
        #expect(points.max() == 6, "the training curve has one point per record")
    }

    /// TensorBoard's own reader (EventAccumulator) finds in tb/ exactly the scalars of
    /// metrics.jsonl.
    @Test func tensorBoardReadsTheEventFile() throws {
        let tmp = TempDir()
        let (_, dir) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 12, evalEvery: 6, extra: "log_every: 3"))
        let script = """
            import json, sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1] + "/tb"); acc.Reload()
            print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
            """
        let r = try run("python3", ["-c", script, dir])
        try #require(r.status == 0, "pip install tensorboard: \(r.stderr)")
        let scalars = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: [[Double]]]
        let lines = metricsLines(dir)
        func expected(_ kind: String?, _ key: String) -> [[Double]] {
            lines.filter { ($0["kind"] as? String) == kind && $0[key] != nil }.map { [Double($0["step"] as! Int), Double(Float($0[key] as! Double))] }
        }
        // Same steps; values equal as float32 (TensorBoard's simple_value).
        func same(_ a: [[Double]]?, _ b: [[Double]]) -> Bool {
            guard let a, a.count == b.count else { return false }
            return zip(a, b).allSatisfy { $0[0] == $1[0] && abs($0[1] - $1[1]) <= 1e-6 * max(1, abs($1[1])) }
        }
        for (tag, kind, key) in [("train/loss", "train", "loss"), ("train/accuracy", "train", "accuracy"),
                                 ("val/average", nil, "val_average"), ("val/loss", nil, "val_loss")] as [(String, String?, String)] {
            #expect(same(scalars[tag], expected(kind, key)), "\(tag): \(scalars[tag] ?? []) vs \(expected(kind, key))")
        }
        #expect(scalars["train/loss"]?.count == 4 && scalars["val/average"]?.count == 2)
        for k in 0..<2 {  // one adapter per task; each has grown from B = 0
            let growth = lines.compactMap { ($0["adapter_growth"] as? [Double])?[k] }
            #expect(same(scalars["adapters/growth_\(k)"], zip(expected(nil, "val_average"), growth).map { [$0.0[0], Double(Float($0.1))] }))
            #expect(growth.count == 2 && growth.allSatisfy { $0 > 0 }, "\(growth)")
        }
        // Per adapted layer too: the stem and every block conv, one value per task.
        let perLayer = lines.compactMap { $0["adapter_growth_per_layer"] as? [String: [Double]] }.last ?? [:]
        #expect(perLayer["stem"]?.count == 2 && perLayer.count == 7, "\(perLayer.keys.sorted())")
        #expect(scalars.keys.contains { $0.hasPrefix("val/") && $0 != "val/average" && $0 != "val/loss" }, "per-task accuracy")
    }

    /// `mola-train runs`: finished and interrupted runs, and the settings that differ.
    @Test func runsTableListsEveryRun() throws {
        let tmp = TempDir()
        _ = try TinyData.train(TinyData.config(tmp, method: "uniform", steps: 4, output: "runs/a"))
        _ = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 4, extra: "log_every: 2", output: "runs/b"))
        _ = try TinyData.train(TinyData.config(tmp, method: "mola-router", steps: 8, output: "runs/c"), stopAfter: 3)
        let rows = try RunsTable.scan(tmp.path + "/runs")
        #expect(rows.map(\.method) == ["uniform", "mola-grad", "mola-router"])
        #expect(rows.map(\.status) == ["finished", "finished", "interrupted"])
        #expect(rows[0].testAverage != nil && rows[2].testAverage == nil && rows[2].steps == 3)
        // A run whose folder lock is held (by a trainer on this or any host sharing the
        // folder) is running, named by the lock's holder; a pid file would mean nothing on
        // another host.
        do {
            let lock = try ProcessLock(tmp.path + "/runs/c", what: "the run folder", contention: .refuse)
            #expect(try RunsTable.scan(tmp.path + "/runs")[2].status == "running (pid \(getpid()) on \(ProcessInfo.processInfo.hostName))")
            withExtendedLifetime(lock) {}
        }
        #expect(try RunsTable.scan(tmp.path + "/runs")[2].status == "interrupted")
        let table = RunsTable.render(rows, onlyChanged: true)
        #expect(table.contains("log_every") && table.contains("status") && !table.contains("batch_size"), "\(table)")
        #expect(!table.contains { $0.isUppercase }, "a Swift property name instead of a config key: \(table)")
    }

    /// Every setting `runs` shows is named as a config key: set back through `--set` with
    /// its own value, each gives the same config.
    @Test func runsTableNamesSettingsAsConfigKeys() throws {
        let tmp = TempDir()
        for method in ["mola-router", "cgc"] {
            let file = TinyData.config(tmp, method: method, extra: "sync_batchnorm: false\nsampling: {temperature: 2}")
            let config = try TrainConfig.load(file)
            #expect(config.settings.count > 25)
            for (key, value) in config.settings where !["name", "method", "output"].contains(key) && !key.hasPrefix("data.") {
                let same = try? TrainConfig.load(file, overrides: ["\(key)=\(value)"])
                #expect(same?.hash == config.hash, "\(method): \(key)=\(value) is not a config key with its value")
            }
        }
    }

    @Test func interruptedAndResumedEqualsUninterrupted() throws {
        let tmp = TempDir()
        let straight = TinyData.config(tmp, method: "mola-router", steps: 14, evalEvery: 4, output: "a")
        _ = try TinyData.train(straight)
        let split = TinyData.config(tmp, method: "mola-router", steps: 14, evalEvery: 4, output: "b")
        let (first, _) = try TinyData.train(split, stopAfter: 6)  // mid-window: running loss must survive too
        #expect(first == .interrupted)
        let (second, _) = try TinyData.train(split, resume: true)
        #expect(second == .finished)
        for f in ["checkpoints/latest/model.safetensors", "checkpoints/latest/optimizer.safetensors", "checkpoints/best/model.safetensors"] {
            #expect(bytes("\(tmp.path)/a/\(f)") == bytes("\(tmp.path)/b/\(f)"), "\(f) differs after resume")
        }
        let strip = { (m: [[String: Any]]) in m.map { $0.filter { $0.key != "seconds" } as NSDictionary } }
        #expect(strip(metricsLines("\(tmp.path)/a")) == strip(metricsLines("\(tmp.path)/b")))
        #expect(try RunReport.read("\(tmp.path)/a").test == RunReport.read("\(tmp.path)/b").test)
    }

    @Test func corruptCheckpointIsRefused() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "mola-grad", steps: 8)
        _ = try TinyData.train(config, stopAfter: 3)
        let path = "\(tmp.path)/runs/mola-grad/checkpoints/latest/model.safetensors"
        var data = bytes(path)
        data[data.count - 5] ^= 0x40
        try data.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try TinyData.train(config, resume: true)
        } throws: { error in
            "\(error)".contains("checksum mismatch") && "\(error)".contains("model.safetensors")
        }
    }

    @Test func nanLossStopsNamingTheStep() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "uniform", steps: 20, extra: "optimizer: {lr: 1.0e+9, momentum: 0}")
        #expect {
            _ = try TinyData.train(config)
        } throws: { error in
            let s = "\(error)"
            return s.contains("at step") && (s.contains("nan") || s.contains("inf")) && s.contains("checkpoint")
        }
    }

    @Test func safetensorsLoadInPython() throws {
        let tmp = TempDir()
        let (_, dir) = try TinyData.train(TinyData.config(tmp, method: "mola-grad", steps: 4))
        let script = """
            import json, struct, sys, numpy as np
            path = sys.argv[1]
            raw = open(path, 'rb').read()
            (n,) = struct.unpack('<Q', raw[:8])
            header = json.loads(raw[8:8 + n])
            meta = header.pop('__metadata__')
            out = {}
            for name, d in header.items():
                b, e = d['data_offsets']
                a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype='<f4').reshape(d['shape'])
                assert np.isfinite(a).all(), name
                out[name] = list(a.shape)
            print(json.dumps({'format': meta['format'], 'shapes': out}))
            """
        let r = try run("python3", ["-c", script, dir + "/checkpoints/best/model.safetensors"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(obj["format"] as? String == "mola-swift")
        let shapes = obj["shapes"] as! [String: [Int]]
        #expect(shapes["stem.conv.weight"] == [3, 3, 1, 8])
        #expect(shapes["stem.conv.adapter.1.a"] == [3, 3, 1, 2])
        #expect(shapes["stage3.block1.conv2.adapter.0.b"] == [2, 16])
        #expect(shapes["heads.1.weight"] == [16, 10])
        #expect(shapes["stage1.block1.bn1.running_var"] != nil || shapes.keys.contains { $0.contains("running") })
    }

    @Test func signalStopsCleanlyAndResumeFinishes() throws {
        let tmp = TempDir()
        let config = TinyData.config(tmp, method: "mola-grad", steps: 100000, evalEvery: 1000)
        let tool = executable("mola-train")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["run", config, "--quiet"]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 2.5)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130, "a stopped run exits with 130")
        let state = try JSONSerialization.jsonObject(with: bytes("\(tmp.path)/runs/mola-grad/checkpoints/latest/state.json")) as! [String: Any]
        let step = state["step"] as! Int
        #expect(step > 0 && step < 100000)
        let r = try run(tool, ["run", config, "--resume", "--quiet", "--set", "max_steps=\(step + 5)"])
        #expect(r.status == 1 && r.stderr.contains("different config"), "a changed config must not resume silently: \(r.stderr)")
    }
}

/// A built executable of this package, next to the test bundle.
func executable(_ name: String) -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let p = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        for config in ["release", "debug"] where FileManager.default.isExecutableFile(atPath: url.path + "/.build/\(config)/\(name)") {
            return url.path + "/.build/\(config)/\(name)"
        }
    }
    fatalError("\(name) is not built; run `swift build` first")
}
