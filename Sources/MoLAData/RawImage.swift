/// Decoded 8-bit pixels, row-major, channels interleaved (H×W×C).
public struct RawImage: Equatable, Sendable {
    public var height: Int
    public var width: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(height: Int, width: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == height * width * channels)
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
    }
}

/// The shape every image of a dataset is brought to.
public struct ImageShape: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public var channels: Int

    public init(height: Int, width: Int, channels: Int) {
        self.height = height
        self.width = width
        self.channels = channels
    }

    public var pixelCount: Int { height * width * channels }
    public var description: String { "\(height)×\(width)×\(channels)" }
}
