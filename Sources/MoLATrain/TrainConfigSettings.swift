import Foundation

/// A config's settings named as users write them in YAML, for the tables people read.
extension TrainConfig {
    /// Every setting as the key a user writes and its value (`optimizer.lr` → `0.05`, lists
    /// as `[8,12,16]`): what `mola-train runs` and the report show.
    public var settings: [String: String] {
        var stored: [String: String] = [:]
        if let json = try? JSONSerialization.jsonObject(with: JSONEncoder.sorted.encode(self)) { Self.flatten(json, prefix: "", into: &stored) }
        return Dictionary(uniqueKeysWithValues: stored.map { (Self.yamlKey(forStoredPath: $0.key), $0.value) })
    }

    private static func flatten(_ value: Any, prefix: String, into out: inout [String: String]) {
        if let m = value as? [String: Any] {
            for (k, v) in m { flatten(v, prefix: prefix.isEmpty ? k : prefix + "." + k, into: &out) }
        } else if let a = value as? [Any] {
            out[prefix] = "[" + a.map { "\($0)" }.joined(separator: ",") + "]"
        } else if let n = value as? NSNumber, type(of: n) == type(of: NSNumber(value: true)) {  // JSON's true, not 1
            out[prefix] = n.boolValue ? "true" : "false"
        } else {
            out[prefix] = "\(value)"
        }
    }

    /// The key a user writes in YAML for a path of this type's stored form (run.json keeps
    /// the Swift property names): `optimizer.learningRate` → `optimizer.lr`,
    /// `batchSize` → `batch_size`. For tables a person reads (`mola-train runs`).
    public static func yamlKey(forStoredPath path: String) -> String {
        let whole: [String: String] = [
            "optimizer.learningRate": "optimizer.lr", "optimizer.kind": "optimizer.name", "adapters.ranks": "adapters.rank",
            "syncBatchNorm": "sync_batchnorm", "batchNorm": "batchnorm", "taskWeighting": "loss.task_weighting",
            "samplingTemperature": "sampling.temperature", "experts": "experts.count", "taskExperts": "experts.per_task",
            "selectK": "experts.k", "selectGamma": "experts.gamma", "repGrad": "weighting.rep_grad",
        ]
        if let key = whole[path] { return key }
        return path.split(separator: ".").map { part in
            part.reduce(into: "") { out, c in
                if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
            }
        }.joined(separator: ".")
    }
}
