import MoLAModel

extension Method {
    /// HydraLoRA-style adapters: MoLA-Router's router and placement, one A per layer shared
    /// by the adapters (a B each), the router trained without task labels (no TwD).
    public static let hydraLora: Method = {
        var m = Method(name: "hydra-lora", summary: "one shared A, a B per adapter, routed without task labels") { r in
            routedAdapters(r, form: .sharedA, decorrelationWeight: 0)
        }
        m.adapters = .routed
        m.fixedAdapterForm = .sharedA
        m.mixes = .adapters
        m.refusedKeys = ["router.twd_weight": "hydra-lora trains its router without task labels (no TwD)"]
        return m
    }()
}
