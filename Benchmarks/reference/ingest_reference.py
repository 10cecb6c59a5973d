"""Plain-Python references for `mola-bench ingest`: the same jobs done the usual way
(numpy decoding, numpy.savez_compressed shards, Pillow for PNGs and JPEGs, numpy.load to read
back). `make-jpeg-tree` writes the JPEG job's input once (untimed).
Prints one JSON object per measurement, best of --repeat runs."""
import argparse, gzip, json, os, shutil, sys, time
import numpy as np

SHARD_BYTES = 64 << 20


def write_shards(images, labels, out, prefix="train"):
    os.makedirs(out, exist_ok=True)
    per = max(1, SHARD_BYTES // int(np.prod(images.shape[1:])))
    tasks = np.zeros(len(labels), np.int64)
    for k, lo in enumerate(range(0, len(labels), per)):
        np.savez_compressed(os.path.join(out, f"{prefix}-{k:05d}.npz"), images=images[lo:lo + per],
                            labels=labels[lo:lo + per].astype(np.int64), tasks=tasks[lo:lo + per])


def idx_job(images_gz, labels_gz, out):
    raw = gzip.open(images_gz).read()
    n, h, w = np.frombuffer(raw, ">u4", 3, 4)
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w, 1)
    labels = np.frombuffer(gzip.open(labels_gz).read(), np.uint8, offset=8)
    write_shards(images, labels, out)
    return int(n)


def tree_job(root, out, size, mode):
    """Pillow decodes each file of a class-folder tree, converts it to `mode` and shrinks it
    with BOX (area averaging, as ours when shrinking); numpy writes the shards."""
    from PIL import Image
    files, labels = [], []
    for c, folder in enumerate(sorted(d for d in os.listdir(root) if not d.startswith("."))):
        for f in sorted(os.listdir(os.path.join(root, folder))):
            files.append(os.path.join(root, folder, f)); labels.append(c)
    images = np.empty((len(files), size, size, 3 if mode == "RGB" else 1), np.uint8)
    for i, f in enumerate(files):
        images[i] = np.asarray(Image.open(f).convert(mode).resize((size, size), Image.BOX)).reshape(images.shape[1:])
    write_shards(images, np.array(labels), out)
    return len(files)


def make_jpeg_tree(root, count):
    """10 class folders of `count` 96×96 colour JPEGs: crops of scikit-learn's photographs."""
    from PIL import Image
    import sklearn.datasets
    photos = [Image.open(os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", n)).convert("RGB")
              for n in ("china.jpg", "flower.jpg")]
    rng = np.random.default_rng(0)
    for c in range(10):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
    for i in range(count):
        im = photos[i % 2]
        x, y = int(rng.integers(0, im.width - 96)), int(rng.integers(0, im.height - 96))
        im.crop((x, y, x + 96, y + 96)).save(os.path.join(root, f"class{i % 10}", f"{i:05d}.jpg"), quality=90)
    open(os.path.join(root, ".complete"), "w").close()
    return count


def read_job(dataset, batch):
    index = json.load(open(os.path.join(dataset, "index.json")))
    parts = [np.load(os.path.join(dataset, s["file"])) for s in index["shards"] if s["split"] == "train"]
    images = np.concatenate([p["images"] for p in parts])
    labels = np.concatenate([p["labels"] for p in parts])
    order = np.random.default_rng(0).permutation(len(labels))
    for lo in range(0, len(order), batch):  # the batches a training loop consumes
        ids = order[lo:lo + batch]
        x = images[ids].astype(np.float32) * (1 / 255)
        y = labels[ids]
    return len(labels)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("job", choices=["idx", "png", "jpeg", "make-jpeg-tree", "read"])
    p.add_argument("--images"); p.add_argument("--labels"); p.add_argument("--root")
    p.add_argument("--dataset"); p.add_argument("--out"); p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128); p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--count", type=int, default=10000)
    a = p.parse_args()
    if a.job == "make-jpeg-tree":
        print(json.dumps({"made": make_jpeg_tree(a.root, a.count)}))
        return
    best = None
    for _ in range(a.repeat):
        if a.out: shutil.rmtree(a.out, ignore_errors=True)
        t = time.perf_counter()
        if a.job == "idx": n = idx_job(a.images, a.labels, a.out)
        elif a.job == "png": n = tree_job(a.root, a.out, a.size, "L")
        elif a.job == "jpeg": n = tree_job(a.root, a.out, a.size, "RGB")
        else: n = read_job(a.dataset, a.batch)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    print(json.dumps({"impl": "python-numpy" + ("+pillow" if a.job in ("png", "jpeg") else ""), "images": n,
                      "seconds": round(best, 4), "images_per_s": round(n / best, 1)}))


if __name__ == "__main__":
    sys.exit(main())
