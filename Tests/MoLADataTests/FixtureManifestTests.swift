import Foundation
import Testing
import MoLAData
import MoLASupport

/// The shipped MedMNIST and RadImageNet manifests, fed with small fixture files written in
/// exactly those formats (the real sets cannot be installed here).
@Suite(.serialized) struct FixtureManifestTests {
    @Test func medmnistManifestReadsNumpyWrittenArchives() throws {
        let dir = TempDir("medmnist")
        // Real MedMNIST: path, blood and derma are RGB (N×28×28×3), the others grey;
        // labels are uint8 N×1; each archive has its own train/val/test.
        let counts = try python("""
            import numpy as np
            flags = {'pathmnist': (9, 3), 'octmnist': (4, 1), 'organcmnist': (11, 1), 'bloodmnist': (8, 3),
                     'breastmnist': (2, 1), 'dermamnist': (7, 3), 'organamnist': (11, 1), 'organsmnist': (11, 1),
                     'pneumoniamnist': (2, 1)}
            rng = np.random.default_rng(0)
            total = 0
            for i, (flag, (k, c)) in enumerate(flags.items()):
                arrays = {}
                for split, n in [('train', 20 + i), ('val', 5), ('test', 7)]:
                    shape = (n, 28, 28) if c == 1 else (n, 28, 28, 3)
                    imgs = rng.integers(0, 256, size=shape, dtype=np.uint8)
                    imgs[0] = 77  # a known pixel value
                    arrays[split + '_images'] = imgs
                    arrays[split + '_labels'] = rng.integers(0, k, size=(n, 1), dtype=np.uint8)
                    total += n
                np.savez_compressed('\(dir.path)/' + flag + '.npz', **arrays)
            print(total)
            """)
        setenv("MEDMNIST_DIR", dir.path, 1)
        let r = try ingest(packageRoot + "/data-manifests/medmnist-mola.yaml", into: dir.file("out"))
        #expect(r.images == Int(counts.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(r.index.tasks.count == 9 && r.index.tasks.map(\.classes.count).reduce(0, +) == 65)
        #expect(r.index.split(.train)!.perTask == (0..<9).map { 20 + $0 })
        #expect(r.index.split(.val)!.perTask == Array(repeating: 5, count: 9))
        #expect(r.index.image == ImageShape(height: 28, width: 28, channels: 3))
        // Grey tiled to 3 channels: oct's first train image was all 77.
        let train = try DatasetReader(directory: r.directory).load(.train)
        let oct = train.filter(tasks: [1])
        #expect(oct.images.prefix(28 * 28 * 3).allSatisfy { $0 == 77 })
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
    }

    /// All 12 2-D MedMNIST sets as `python -m medmnist download` leaves them: the real file
    /// names (at 28 px and MedMNIST+'s `_64`), key names and shapes — grey N×H×W, RGB
    /// N×H×W×3, uint8 N×1 labels, ChestMNIST's N×14 — with random pixels.
    @Test(arguments: [28, 64]) func allTwelveMedmnistSets(size: Int) throws {
        let dir = TempDir("medmnist12")
        let suffix = size == 28 ? "" : "_\(size)"
        let written = try python("""
            import numpy as np
            flags = {'pathmnist': (9, 3), 'chestmnist': (14, 1), 'dermamnist': (7, 3), 'octmnist': (4, 1),
                     'pneumoniamnist': (2, 1), 'retinamnist': (5, 3), 'breastmnist': (2, 1), 'bloodmnist': (8, 3),
                     'tissuemnist': (8, 1), 'organamnist': (11, 1), 'organcmnist': (11, 1), 'organsmnist': (11, 1)}
            rng = np.random.default_rng(1)
            total, positives = 0, 0
            for flag, (k, c) in flags.items():
                arrays = {}
                for split, n in [('train', 12), ('val', 4), ('test', 5)]:
                    arrays[split + '_images'] = rng.integers(0, 256, size=(n, \(size), \(size)) + ((3,) if c == 3 else ()), dtype=np.uint8)
                    if flag == 'chestmnist':
                        arrays[split + '_labels'] = (rng.random((n, 14)) < 0.3).astype(np.uint8)
                        if split == 'train': positives = int(arrays[split + '_labels'][:, 0].sum())
                    else:
                        arrays[split + '_labels'] = rng.integers(0, k, size=(n, 1), dtype=np.uint8)
                    total += n
                np.savez_compressed('\(dir.path)/' + flag + '\(suffix).npz', **arrays)
            print(total, positives)
            """).split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        setenv("MEDMNIST_DIR", dir.path, 1)
        defer { unsetenv("MEDMNIST_DIR") }
        let r = try ingest(packageRoot + "/data-manifests/medmnist\(size == 28 ? "" : "-\(size)").yaml", into: dir.file("out"))
        #expect(r.images == written[0])
        #expect(r.index.tasks.map(\.name) == ["path", "chest", "derma", "oct", "pneumonia", "retina", "breast", "blood", "tissue",
                                               "organa", "organc", "organs"])
        #expect(r.index.tasks.map(\.labelKind) == [.single, .multi] + Array(repeating: .single, count: 10))
        #expect(r.index.tasks.map(\.classes.count) == [9, 14, 7, 4, 2, 5, 2, 8, 8, 11, 11, 11])
        #expect(r.index.split(.train)!.perClass[1][0] == written[1], "train images with atelectasis")
        #expect(r.index.image == ImageShape(height: size, width: size, channels: 3))
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
    }

    /// `${NAME:-default}` in manifest paths: the default (here under ~) when NAME is unset.
    @Test func pathDefaultsApplyWhenTheVariableIsUnset() throws {
        let v = try ConfigValue.load(file: "t.yaml", text: "p: x")
        unsetenv("MOLA_TEST_UNSET_DIR")
        #expect(try PathExpansion.expand("${MOLA_TEST_UNSET_DIR:-~/.medmnist}/a.npz", relativeTo: "/", at: v) == NSHomeDirectory() + "/.medmnist/a.npz")
        setenv("MOLA_TEST_UNSET_DIR", "/data/mm", 1)
        defer { unsetenv("MOLA_TEST_UNSET_DIR") }
        #expect(try PathExpansion.expand("${MOLA_TEST_UNSET_DIR:-~/.medmnist}/a.npz", relativeTo: "/", at: v) == "/data/mm/a.npz")
    }

    @Test func radimagenetManifestReadsAPNGTree() throws {
        let dir = TempDir("radimagenet")
        let tasks = ["CT/abdomen", "CT/lung", "MR/abdomen", "MR/ankle", "MR/brain", "MR/hip", "MR/knee",
                     "MR/shoulder", "MR/spine", "US/abdomen", "US/thyroid"]
        var expected = 0
        for (t, task) in tasks.enumerated() {
            for c in 0..<(2 + t % 3) {
                for i in 0..<10 {
                    // Mixed formats as real trees have: 8-bit grey, 16-bit grey, RGB; 70×70.
                    let (ct, bits, ch): (UInt8, UInt8, Int) = [(0, 8, 1), (0, 16, 1), (2, 8, 3)][i % 3]
                    let maxV = (1 << Int(bits)) - 1
                    let png = PNGFixture.encode(width: 70, height: 70, colorType: ct, bitDepth: bits,
                                                samples: (0..<(70 * 70 * ch)).map { ($0 * (c + 3) + i) % (maxV + 1) })
                    _ = dir.write("data/\(task)/class\(c)/img\(i).png", png)
                    expected += 1
                }
            }
        }
        _ = dir.write("data/CT/lung/class0/.hidden/skip.png", [1, 2, 3])  // hidden folders are ignored
        setenv("RADIMAGENET_DIR", dir.path + "/data", 1)
        let r = try ingest(packageRoot + "/data-manifests/radimagenet.yaml", into: dir.file("out"))
        #expect(r.images == expected)
        #expect(r.index.tasks.count == 11)
        #expect(r.index.tasks[2].classes == ["class0", "class1", "class2", "class3"].prefix(2 + 2 % 3).map { $0 })
        #expect(r.index.image == ImageShape(height: 64, width: 64, channels: 1))
        // 20% of each class (10 images) carved as test.
        #expect(r.index.split(.test)!.perClass.allSatisfy { $0.allSatisfy { $0 == 2 } })
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
    }

    /// The shipped VLCS, PACS and Office-Home manifests over small trees of JPEGs (and PNGs
    /// for PACS) written by Pillow in their usual layouts.
    @Test(arguments: [("vlcs", "VLCS_DIR", ["Caltech101", "LabelMe", "SUN09", "VOC2007"], ["bird", "car", "chair", "dog", "person"]),
                      ("pacs", "PACS_DIR", ["art_painting", "cartoon", "photo", "sketch"],
                       ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]),
                      ("officehome", "OFFICEHOME_DIR", ["Art", "Clipart", "Product", "Real World"], ["Alarm_Clock", "Bike", "Mug"])])
    func domainManifestsReadJPEGTrees(name: String, variable: String, domains: [String], classes: [String]) throws {
        let dir = TempDir(name)
        let script = """
            import os, sys
            from PIL import Image
            root, domains, classes = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
            for d, domain in enumerate(domains):
                for c, cls in enumerate(classes):
                    os.makedirs(os.path.join(root, domain, cls))
                    for i in range(5):
                        im = Image.new("RGB", (90 + 7 * i, 70), (40 * c % 256, 30 * d, 9 * i))
                        ext = ".png" if (i == 4 and domain == "sketch") else (".JPG" if i == 3 else ".jpg")
                        im.save(os.path.join(root, domain, cls, f"{i}{ext}"))
            """
        let r = try run("python3", ["-c", script, dir.file("data"), domains.joined(separator: ","), classes.joined(separator: ",")])
        try #require(r.status == 0, "Pillow wrote no fixture (run scripts/setup.sh): \(r.stderr)")
        setenv(variable, dir.file("data"), 1)
        let result = try ingest(packageRoot + "/data-manifests/\(name).yaml", into: dir.file("out"))
        #expect(result.images == domains.count * classes.count * 5)
        #expect(result.index.kind == .domains)
        #expect(result.index.tasks.map(\.classes).allSatisfy { $0 == classes })
        #expect(result.index.image == ImageShape(height: 64, width: 64, channels: 3))
        #expect(try DatasetVerifier.verify(directory: result.directory).ok)
    }
}
