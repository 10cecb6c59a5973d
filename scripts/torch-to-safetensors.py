#!/usr/bin/env python3
"""Turns a PyTorch state dict (a torchvision `.pth`, e.g. resnet18-f37072fd.pth) into the
safetensors file `backbone: {init: FILE}` reads: every floating-point tensor as float32,
names kept (torchvision's). Integer buffers (num_batches_tracked) are left out.

    python3 scripts/torch-to-safetensors.py resnet18-f37072fd.pth resnet18.safetensors

Needs PyTorch (pip install torch); the safetensors package is not needed.
"""
import json
import os
import struct
import sys


def write_safetensors(tensors, path, metadata=None):
    """tensors: name -> (shape, little-endian float32 bytes). The safetensors layout: an
    8-byte header length, the JSON header, then the data, header padded to 8 bytes."""
    header, offset, blobs = {}, 0, []
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    import torch
    state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = state["state_dict"]
    tensors = {name: (tuple(t.shape), t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())
               for name, t in state.items() if t.is_floating_point()}
    write_safetensors(tensors, sys.argv[2], {"source": os.path.basename(sys.argv[1])})
    print(f"wrote {sys.argv[2]}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
