import Foundation
import MoLAData
import MoLASupport
import MoLATensor

/// torchvision ResNet or ShuffleNet V2 weights (`backbone: {init: file.safetensors}`) into
/// our backbone: ResNet names mapped (`layer2.0.downsample.1.running_var` →
/// `stage2.block1.shortcut.bn.running_var`; ShuffleNet's are torchvision's already),
/// convolutions transposed from O×I×kh×kw to our kh×kw×I×O (depthwise C×1×k×k to k×k×C).
/// The classifier (`fc.*`) and `num_batches_tracked` are skipped; anything else that does
/// not fit is an error listing every missing, unexpected and mis-shaped tensor.
public enum PretrainedWeights {
    /// Our parameter name for a torchvision one, or nil for tensors we skip.
    public static func ourName(_ torch: String) -> String? {
        if torch.hasPrefix("fc.") || torch.hasSuffix("num_batches_tracked") { return nil }
        if torch.hasPrefix("conv1.") { return "stem.conv." + torch.dropFirst("conv1.".count) }
        if torch.hasPrefix("bn1.") { return "stem.bn." + torch.dropFirst("bn1.".count) }
        let parts = torch.split(separator: ".").map(String.init)
        guard parts.count >= 4, parts[0].hasPrefix("layer"), let stage = Int(parts[0].dropFirst(5)), let block = Int(parts[1]) else { return torch }
        let head = "stage\(stage).block\(block + 1)."
        if parts[2] == "downsample", parts.count == 5 {
            return head + (parts[3] == "0" ? "shortcut.conv." : "shortcut.bn.") + parts[4]
        }
        return head + parts[2...].joined(separator: ".")
    }

    /// The main backbone's parameters: not heads, router, gates, experts or adapters.
    static func isBackbone(_ name: String) -> Bool {
        !["heads.", "router.", "twd.", "gates.", "expert"].contains { name.hasPrefix($0) } && !name.contains(".adapter.")
    }

    /// Loads `file` into the backbone parameters of `store` (names without a prefix: the
    /// model's main backbone).
    public static func load(_ file: String, into store: ParameterStore) throws {
        let bytes = [UInt8](try FileIO.read(file))
        let (tensors, _) = try SafeTensors.decode(bytes, file: file, skipping: { $0.hasSuffix("num_batches_tracked") })
        let backbone = store.entries.filter { isBackbone($0.name) }
        let resnet = store.entry(named: "stem.conv.weight") != nil
        func ourName(_ torch: String) -> String? { resnet ? Self.ourName(torch) : (torch.hasPrefix("fc.") ? nil : torch) }
        let byName = Dictionary(uniqueKeysWithValues: backbone.map { ($0.name, $0) })
        var unexpected: [String] = [], misShaped: [String] = [], loaded = Set<String>()
        for t in tensors {
            guard let name = ourName(t.name) else { continue }
            guard let e = byName[name] else { unexpected.append(t.name); continue }
            // Convolutions: O×I×kh×kw → kh×kw×I×O, depthwise C×1×k×k → k×k×C; BN vectors as is.
            let want = e.shape.count == 4 ? [e.shape[3], e.shape[2], e.shape[0], e.shape[1]]
                : e.shape.count == 3 ? [e.shape[2], 1, e.shape[0], e.shape[1]] : e.shape
            guard t.shape == want else {
                loaded.insert(name)  // present, so not also "missing"
                misShaped.append("\(t.name) is \(t.shape.map(String.init).joined(separator: "×")), the model's \(want.map(String.init).joined(separator: "×"))")
                continue
            }
            let dst = store.values + e.offset
            if e.shape.count == 4 {
                let (kh, kw, cin, cout) = (e.shape[0], e.shape[1], e.shape[2], e.shape[3])
                for o in 0..<cout { for c in 0..<cin { for i in 0..<kh { for j in 0..<kw {
                    dst[((i * kw + j) * cin + c) * cout + o] = t.values[((o * cin + c) * kh + i) * kw + j]
                } } } }
            } else if e.shape.count == 3 {
                let (kh, kw, c) = (e.shape[0], e.shape[1], e.shape[2])
                for ch in 0..<c { for i in 0..<kh { for j in 0..<kw { dst[(i * kw + j) * c + ch] = t.values[(ch * kh + i) * kw + j] } } }
            } else {
                t.values.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: e.count) }
            }
            loaded.insert(name)
        }
        let missing = backbone.map(\.name).filter { !loaded.contains($0) }
        guard unexpected.isEmpty, misShaped.isEmpty, missing.isEmpty else {
            func list(_ items: [String], _ separator: String) -> String {
                items.prefix(8).joined(separator: separator) + (items.count > 8 ? "\(separator)and \(items.count - 8) more" : "")
            }
            var why: [String] = []
            if !missing.isEmpty { why.append("missing for the model: " + list(missing, ", ")) }
            if !unexpected.isEmpty { why.append("not in the model: " + list(unexpected, ", ")) }
            if !misShaped.isEmpty { why.append("shapes differ: " + list(misShaped, "; ")) }
            throw DataError(file: file, "the weights do not fit the backbone — " + why.joined(separator: ". "),
                            fix: "match backbone.name, widths and blocks (and stem: imagenet for torchvision's) to the file's network")
        }
    }
}
