#!/usr/bin/env python3
"""Writes the parity fixtures of the pretrained-weights tests (run once; the output is
committed, CI has no PyTorch): torchvision-layout networks at widths 4 and 2 — a ResNet-18 (7×7
stride-2 stem, max pool, four stages of two basic blocks, 1×1 downsample conv + BN), a
ResNet-50 (3-4-6-3 bottleneck blocks, stride on the 3×3, 4× expansion) and a ShuffleNet V2
(torchvision's InvertedResidual units, 4-8-4 repeats, at stage widths 8/16/32) — with seeded
weights and non-trivial batch-norm statistics, saved as state dicts and converted by
scripts/torch-to-safetensors.py; and for each an input batch with the eval-mode pooled
features (the classifier is skipped by the loader, so features are what is compared).

    python3 scripts/make-parity-fixture.py Tests/Fixtures
"""
import os
import subprocess
import sys
import tempfile

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
write_safetensors = __import__("importlib").import_module("torch-to-safetensors").write_safetensors


class BasicBlock(nn.Module):  # torchvision's layout and names
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):  # torchvision's v1.5 layout and names
    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, width, blocks=(2, 2, 2, 2), classes=10, bottleneck=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(blocks):
            inner = width * 2 ** i
            cout = inner * 4 if bottleneck else inner
            stride = lambda b: 2 if (i > 0 and b == 0) else 1
            if bottleneck:
                layer = nn.Sequential(*[Bottleneck(cin if b == 0 else cout, inner, stride(b)) for b in range(n)])
            else:
                layer = nn.Sequential(*[BasicBlock(cin if b == 0 else cout, cout, stride(b)) for b in range(n)])
            setattr(self, f"layer{i + 1}", layer)
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(self.avgpool(x), 1)


class InvertedResidual(nn.Module):  # torchvision's ShuffleNet V2 unit, same names
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        half = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, bias=False, groups=inp), nn.BatchNorm2d(inp),
                                         nn.Conv2d(inp, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(nn.Conv2d(inp if stride > 1 else half, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
                                     nn.Conv2d(half, half, 3, stride, 1, bias=False, groups=half), nn.BatchNorm2d(half),
                                     nn.Conv2d(half, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        b, c, h, w = out.shape  # channel shuffle, 2 groups
        return out.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), classes=10):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = channels[0]
        for i, (n, cout) in enumerate(zip(repeats, channels[1:4])):
            setattr(self, f"stage{i + 2}", nn.Sequential(*[InvertedResidual(cin if b == 0 else cout, cout, 2 if b == 0 else 1) for b in range(n)]))
            cin = cout
        self.conv5 = nn.Sequential(nn.Conv2d(cin, channels[4], 1, 1, 0, bias=False), nn.BatchNorm2d(channels[4]), nn.ReLU(inplace=True))
        self.fc = nn.Linear(channels[4], classes)

    def features(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.conv5(x).mean([2, 3])


def fixture(out, name, net):
    torch.manual_seed(1)
    for m in net.modules():  # statistics and affine parameters away from their defaults
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    net.eval()
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        y = net.features(x)
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, name + ".pth")
        torch.save(net.state_dict(), pth)
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "torch-to-safetensors.py"), pth,
                        os.path.join(out, name + ".safetensors")], check=True)
    io = {"input_nchw": (tuple(x.shape), x.numpy().astype("<f4").tobytes()),
          "features": (tuple(y.shape), y.numpy().astype("<f4").tobytes())}
    write_safetensors(io, os.path.join(out, name + "-io.safetensors"), {"torch": torch.__version__})
    print(f"{name}: features {tuple(y.shape)}, first values {y[0, :4].tolist()}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures"
    torch.manual_seed(0)
    fixture(out, "resnet18-w4", ResNet(width=4))
    torch.manual_seed(0)
    fixture(out, "resnet50-w2", ResNet(width=2, blocks=(3, 4, 6, 3), bottleneck=True))
    torch.manual_seed(0)
    fixture(out, "shufflenet-v2-small", ShuffleNetV2(channels=(8, 8, 16, 32, 64)))


if __name__ == "__main__":
    main()
