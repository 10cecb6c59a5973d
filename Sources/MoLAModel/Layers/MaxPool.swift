import MoLATensor

/// Max pooling as a layer (the ImageNet and ShuffleNet stems' 3×3 stride-2), keeping each
/// output's source index for backward.
public final class MaxPool {
    let kernel: Int, stride: Int, padding: Int
    let engine: Engine
    private var shape = Pooling.Shape(batch: 0, height: 0, width: 0, channels: 0, kernel: 1, stride: 1)
    private var output = Tensor(zeros: [0]), argmax: [Int32] = [], gradInput = Tensor(zeros: [0])

    public init(kernel: Int = 3, stride: Int = 2, padding: Int = 1, engine: Engine) {
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.engine = engine
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        let p = Pooling.Shape(batch: 1, height: s.height, width: s.width, channels: s.channels, kernel: kernel, stride: stride, padding: padding)
        return FeatureShape(height: p.outHeight, width: p.outWidth, channels: s.channels)
    }

    public func forward(_ x: Tensor, shape s: FeatureShape, batch: Int) -> Tensor {
        shape = Pooling.Shape(batch: batch, height: s.height, width: s.width, channels: s.channels, kernel: kernel, stride: stride, padding: padding)
        output.reuse([batch, shape.outHeight, shape.outWidth, s.channels])
        if argmax.count != shape.outputCount { argmax = [Int32](repeating: 0, count: shape.outputCount) }
        let y = output.mutablePointer(), pool = shape
        engine.measure(.pooling) { Pooling.maxForward(pool, x: x.pointer, y: y, argmax: &argmax) }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        gradInput.reuse([shape.batch, shape.height, shape.width, shape.channels])
        let dx = gradInput.mutablePointer(), pool = shape
        engine.measure(.pooling) { Pooling.maxBackward(pool, dy: dy.pointer, argmax: argmax, dx: dx) }
        return gradInput
    }
}
