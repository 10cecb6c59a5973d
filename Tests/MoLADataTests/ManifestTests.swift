import Foundation
import MoLAData
import MoLASupport
import Testing

@Suite struct ManifestTests {
    func error(_ yaml: String, env: [String: String] = [:]) -> DataError? {
        let dir = TempDir("manifest")
        let path = dir.write("m.yaml", yaml)
        do { _ = try Manifest(path: path); return nil } catch { return error as? DataError }
    }

    let csv = "{format: csv, path: /dev/null, image_shape: [2, 2], split: train}"

    @Test func unknownKeySuggestsTheRightOne() throws {
        let e = try #require(error("""
            image: {height: 2, width: 2, channels: 1}
            shard_size_mb: 64
            tasks: [{name: t, num_classes: 2, sources: [\(csv)]}]
            """))
        #expect(e.message == "unknown key 'shard_size_mb' at the top level (did you mean 'shard_size_mib'?)")
        #expect(e.location == "line 2, shard_size_mb")
        #expect(e.fix?.contains("allowed keys here") == true)
    }

    @Test func nestedMistakesNameTheKeyPath() throws {
        let e = try #require(error("""
            image: {height: 2, width: 2, channels: 1}
            tasks:
              - name: t
                num_classes: 2
                sources:
                  - {format: csv, path: /dev/null, image_shape: [2, 2], split: training}
            """))
        #expect(e.location == "line 6, tasks[0].sources[0].split")
        #expect(e.message.contains("'training' is not one of train, val, test (did you mean 'train'?)"))
        let f = try #require(error("""
            image: {height: 2, width: 2, channels: 1}
            tasks: [{name: t, num_classes: 2, sources: [{format: idx, images: /dev/null, labels: /dev/null, path: x, split: train}]}]
            """))
        #expect(f.message.hasPrefix("unknown key 'path' in tasks[0].sources[0]"))
    }

    @Test func missingKeysAndWrongTypes() throws {
        #expect(try #require(error("tasks: []")).message == "missing key 'image'")
        let e = try #require(error("""
            image: {height: big, width: 2, channels: 1}
            tasks: [{name: t, num_classes: 2, sources: [\(csv)]}]
            """))
        #expect(e.message == "expected a whole number, found 'big'" && e.location == "line 1, image.height")
        let s = try #require(error("""
            image: {height: 2, width: 2, channels: 1}
            tasks: [{name: t, num_classes: 2, sources: [{format: csv, path: /dev/null, image_shape: [2, 2]}]}]
            """))
        #expect(s.message.contains("missing key 'split'"))
        let c = try #require(error("""
            image: {height: 2, width: 2, channels: 1}
            tasks: [{name: t, sources: [\(csv)]}]
            """))
        #expect(c.message == "task 't' needs classes (or num_classes)")
    }

    @Test func unsetVariablesAndMissingFilesSayWhatToDo() throws {
        let e = try #require(error("""
            image: {height: 2, width: 2, channels: 1}
            tasks: [{name: t, num_classes: 2, sources: [{format: npz, path: $MOLA_SURELY_UNSET/x.npz}]}]
            """))
        #expect(e.message.contains("uses $MOLA_SURELY_UNSET, which is not set"))
        #expect(e.fix == "export MOLA_SURELY_UNSET=/path/to/the/data before running")
        let dir = TempDir("manifest")
        let m = oneTaskManifest(dir, source: "{format: npz, path: missing.npz, split: train}")
        #expect { try ingest(m, into: dir.file("out")) } throws: { e in
            guard let e = e as? DataError else { return false }
            return e.message == "file not found: \(dir.path)/missing.npz" && e.file == m
        }
    }

    @Test func yamlSyntaxErrorsNameTheFile() throws {
        let e = try #require(error("image: {height: 2\ntasks: [\n"))
        #expect(e.message.hasPrefix("not valid YAML"))
    }

    @Test func pathsExpandHomeVariablesAndRelativeToTheManifest() throws {
        setenv("MOLA_TEST_DATA", "/data/x", 1)
        let dir = TempDir("manifest")
        let v = try ConfigValue.load(file: dir.file("f.yaml"), text: "a: 1")
        #expect(try PathExpansion.expand("$MOLA_TEST_DATA/a.npz", relativeTo: dir.path, at: v) == "/data/x/a.npz")
        #expect(try PathExpansion.expand("${MOLA_TEST_DATA}b", relativeTo: dir.path, at: v) == "/data/xb")
        #expect(try PathExpansion.expand("~/q", relativeTo: dir.path, at: v) == NSHomeDirectory() + "/q")
        #expect(try PathExpansion.expand("sub/../c.csv", relativeTo: "/base/dir", at: v) == "/base/dir/c.csv")
    }
}
