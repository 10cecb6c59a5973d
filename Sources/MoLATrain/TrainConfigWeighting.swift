import MoLASupport

/// The `weighting:` key: which balancer combines the tasks' losses or gradients, and
/// whether it works on the gradients of the shared representation (`rep_grad`).
extension TrainConfig {
    /// `weighting: pcgrad`, or `weighting: {name: pcgrad, rep_grad: true}`.
    mutating func readWeighting(_ v: ConfigValue) throws {
        let form = (try? v.string()) == nil ? try v.mapping(allowed: ["name", "rep_grad"]) : nil
        let nameValue = try form?.required("name", hint: "e.g. weighting: {name: pcgrad, rep_grad: true}") ?? v
        let balancer = try nameValue.registered(Balancer.all.map(\.name), Balancer.named)
        weighting = balancer
        guard method.takesBalancer else {
            let methods = Method.all.filter(\.takesBalancer).map(\.name)
            throw v.error("weighting applies to \(spoken(methods)) (one backbone, heads per task)", fix: "remove it or change the method")
        }
        guard let r = form?["rep_grad"], try r.bool() else { return }
        guard balancer.needsTaskGradients else {
            throw r.error("rep_grad applies to the combiners of task gradients; \(balancer) weights the losses (one backward already)",
                          fix: "remove rep_grad")
        }
        if let why = balancer.notOnRepresentation { throw r.error("rep_grad does not apply to \(balancer): \(why)", fix: "remove rep_grad") }
        guard method.sharesRepresentation else {
            let methods = Method.all.filter { $0.takesBalancer && $0.sharesRepresentation }.map(\.name)
            throw r.error("rep_grad needs one representation every head reads, as \(spoken(methods)) have; \(method)'s heads do not share one",
                          fix: "remove rep_grad or change the method")
        }
        repGrad = true
    }

    /// The balancer as tables name it: `pcgrad`, `pcgrad (rep_grad)` (nil: none).
    public var weightingLabel: String? { weighting.map { $0.name + (repGrad == true ? " (rep_grad)" : "") } }
}
