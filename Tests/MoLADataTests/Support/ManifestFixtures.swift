import Foundation
import MoLAData

/// Ingests `manifest` into a fresh folder of `dir` without progress output.
func ingest(_ manifestPath: String, into out: String, skipBad: Bool = false, force: Bool = false) throws -> Ingest.Result {
    let m = try Manifest(path: manifestPath)
    return try Ingest(manifest: m, options: .init(output: out, skipBad: skipBad, force: force, progress: false)).run()
}

/// Writes a one-task manifest around one source (YAML text of the source mapping).
func oneTaskManifest(_ dir: TempDir, name: String = "m", shape: String = "{height: 8, width: 8, channels: 1}",
                     classes: String = "num_classes: 3", source: String, extra: String = "") -> String {
    dir.write("\(name).yaml", """
        name: \(name)
        image: \(shape)
        seed: 1
        validation: 0
        \(extra)
        tasks:
          - name: t
            \(classes)
            sources:
              - \(source)
        """)
}

/// Writes an IDX file (optionally gzip-compressed).
func idxBytes(dims: [Int], data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
    for d in dims { out += PNGFixture.be32(d) }
    return out + data
}
