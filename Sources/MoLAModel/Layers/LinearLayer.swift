import MoLATensor

/// A fully connected layer y = x·W + b on rows of features.
public final class LinearLayer {
    public let inputs: Int, outputs: Int
    public let weight: ParameterRef, bias: ParameterRef
    let store: ParameterStore
    private var input = Tensor(zeros: [0])
    private(set) var output = Tensor(zeros: [0])
    private var gradInput = Tensor(zeros: [0])

    public init(_ store: ParameterStore, name: String, inputs: Int, outputs: Int) {
        self.store = store
        self.inputs = inputs
        self.outputs = outputs
        weight = store.add("\(name).weight", shape: [inputs, outputs], .kaimingUniform(fanIn: inputs, a: Float(5).squareRoot()))
        bias = store.add("\(name).bias", shape: [outputs], .uniform(bound: 1 / Float(inputs).squareRoot()))
    }

    public func forward(_ x: Tensor) -> Tensor {
        input = x
        let rows = x.count / inputs
        output.reuse([rows, outputs])
        Linear.forward(rows: rows, inputs: inputs, outputs: outputs, x: x.pointer, w: store.value(weight), b: store.value(bias),
                       y: output.mutablePointer(), engine: store.engine.threads(1))
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let rows = input.count / inputs
        gradInput.reuse(input.shape)
        Linear.backward(rows: rows, inputs: inputs, outputs: outputs, x: input.pointer, w: store.value(weight), dy: dy.pointer,
                        dx: gradInput.mutablePointer(), dw: store.gradient(weight), db: store.gradient(bias), engine: store.engine.threads(1))
        input = Tensor(zeros: [0])
        return gradInput
    }
}
