import MoLATensor

/// Low-rank adapters beside a convolution's weight W: K updates ΔW_t of low rank, and how
/// the layer runs with them. Two uses:
/// - per task (MoLA-Grad): the images of task t see W + ΔW_t. Batch norm and everything
///   else see the whole batch, as the reference computes it; only the adapted layers work
///   per task group.
/// - mixed by gates (MoLA-Router): y = conv(x, W) + Σ_t g_t(x)·conv(x, ΔW_t), the gates
///   one vector per image, their gradients added into `AdapterGates.gradient`.
///
/// Each form is its own type: `FactorisedAdapters`, `SharedAAdapters`, `ConvLoRAAdapters`.
/// They read the convolution's last input, shape and batch layout from the `Conv` they are
/// called with, and write its output.
public protocol ConvAdapters: AnyObject {
    var form: AdapterForm { get }
    /// Adapters per layer (K).
    var count: Int { get }
    var rank: Int { get }
    /// alpha / rank: the factor on every ΔW_t.
    var scale: Float { get }
    /// Adapter t's factors (for SharedAAdapters, every entry of `a` is the one shared A).
    var a: [ParameterRef] { get }
    var b: [ParameterRef] { get }

    /// y = conv(x_g, W + ΔW_task) for every task group g of the last forward.
    func forwardPerTask(_ conv: Conv, y: UnsafeMutablePointer<Float>)
    /// Gradients of `forwardPerTask`: W's and the adapters' accumulated, dx written.
    func backwardPerTask(_ conv: Conv, dy: Tensor, dx: UnsafeMutablePointer<Float>?)
    /// y = conv(x, W) + Σ_t g_t·conv(x, ΔW_t).
    func forwardGated(_ conv: Conv, gates: AdapterGates, y: UnsafeMutablePointer<Float>)
    /// Gradients of `forwardGated`, the gates' included.
    func backwardGated(_ conv: Conv, gates: AdapterGates, dy: Tensor, dx: UnsafeMutablePointer<Float>?)
    /// W + ΔW_t in im2col layout ((kh, kw, C_in) × C_out).
    func effectiveWeight(_ t: Int, of conv: Conv) -> [Float]
}

/// How a convolution's adapters are parameterised (the config's `adapters.form`).
public enum AdapterForm: String, Codable, CaseIterable, Sendable {
    /// A k×k conv to r channels and a 1×1 conv back: ΔW of rank ≤ r.
    case factorised
    /// loralib's ConvLoRA, as the reference: ΔW = reshape(B·A), rank ≤ r·k.
    case convLora = "conv-lora"
    /// HydraLoRA's asymmetric form: the factorised adapters with one A per layer shared by
    /// all of them, a B per adapter (ΔW_t = scale·A·B_t).
    case sharedA = "shared-a"

    /// Registers `count` adapters of this form for a layer of the given geometry.
    func make(_ store: ParameterStore, name: String, kernel: Int, inChannels: Int, outChannels: Int, count: Int, rank: Int,
              alpha: Float) -> any ConvAdapters {
        switch self {
        case .factorised:
            FactorisedAdapters(store, name: name, kernel: kernel, inChannels: inChannels, outChannels: outChannels, count: count, rank: rank, alpha: alpha)
        case .sharedA:
            SharedAAdapters(store, name: name, kernel: kernel, inChannels: inChannels, outChannels: outChannels, count: count, rank: rank, alpha: alpha)
        case .convLora:
            ConvLoRAAdapters(store, name: name, kernel: kernel, inChannels: inChannels, outChannels: outChannels, count: count, rank: rank, alpha: alpha)
        }
    }
}
