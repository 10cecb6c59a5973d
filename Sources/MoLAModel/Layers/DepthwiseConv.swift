import MoLATensor

/// A depthwise convolution layer (one k×k filter per channel, no bias: batch norm follows).
/// Its weight is k×k×C (torchvision's C×1×k×k, transposed).
public final class DepthwiseConv {
    public let channels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: ParameterRef
    let store: ParameterStore
    private var input = Tensor(zeros: [0])
    private var shape = Depthwise.Shape(batch: 0, height: 0, width: 0, channels: 0, kernel: 1, stride: 1, padding: 0)
    private var output = Tensor(zeros: [0]), gradInput = Tensor(zeros: [0])

    public init(_ store: ParameterStore, name: String, channels: Int, kernel: Int = 3, stride: Int) {
        self.store = store
        self.channels = channels; self.kernel = kernel; self.stride = stride; padding = kernel / 2
        // PyTorch's default for a conv: Kaiming-uniform (a = √5) over its fan-in, k·k per channel.
        weight = store.add("\(name).weight", shape: [kernel, kernel, channels], .kaimingUniform(fanIn: kernel * kernel, a: Float(5).squareRoot()))
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        let d = Depthwise.Shape(batch: 1, height: s.height, width: s.width, channels: channels, kernel: kernel, stride: stride, padding: padding)
        return FeatureShape(height: d.outHeight, width: d.outWidth, channels: channels)
    }

    public func forward(_ x: Tensor, shape s: FeatureShape, batch: Int) -> Tensor {
        input = x
        shape = Depthwise.Shape(batch: batch, height: s.height, width: s.width, channels: channels, kernel: kernel, stride: stride, padding: padding)
        output.reuse([batch, shape.outHeight, shape.outWidth, channels])
        store.engine.measure(.convForward) { Depthwise.forward(shape, x: x.pointer, w: store.value(weight), y: output.mutablePointer(), engine: store.engine) }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        gradInput.reuse(input.shape)
        store.engine.measure(.convWeightGradient) {
            Depthwise.backward(shape, x: input.pointer, w: store.value(weight), dy: dy.pointer, dx: gradInput.mutablePointer(), dw: store.gradient(weight), engine: store.engine)
        }
        input = Tensor(zeros: [0])
        return gradInput
    }
}
