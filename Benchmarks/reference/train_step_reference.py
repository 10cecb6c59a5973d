"""The train step of `mola-bench train-step` in PyTorch (CPU), the same network and maths:

- resnet-mini (default): stem conv3x3 -> 16 + BN + ReLU; basic blocks of widths 16, 32, 64
  (strides 1, 2, 2); 4 tasks; MoLA-Grad with one rank-4 adapter per task on every 3x3
  block conv.
- resnet18: CIFAR-style ResNet-18 (3x3 stem, no max-pool), widths 64, 128, 256, 512, two
  blocks per stage; MoLA-Grad adapts the stem and every 3x3 block conv at rank 8.

Blocks change shape through a 1x1 conv + BN shortcut. MoLA-Grad runs each adapted conv
once per task group with W + (alpha/r) A B; uniform has no adapters. GAP, a 10-class
linear head per task, the sum of per-task mean cross-entropies, SGD momentum 0.9, weight
decay 5e-4. Prints one JSON line: best images/s over the rounds, the time of the two
warm-up steps (with --compile, the compilation) and the peak RSS."""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--backbone", choices=["resnet-mini", "resnet18"], default="resnet-mini")
p.add_argument("--side", type=int, default=28)
p.add_argument("--channels", type=int, default=1)
p.add_argument("--tasks", type=int, default=4)
p.add_argument("--method", choices=["uniform", "mola-grad"], default="mola-grad")
p.add_argument("--rank", type=int, default=4)
p.add_argument("--alpha", type=float, default=16.0)
p.add_argument("--channels-last", action="store_true")
p.add_argument("--compile", action="store_true", help="torch.compile the network (default inductor backend)")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
ADAPT = a.method == "mola-grad"


class AdaptedConv(nn.Module):
    """A conv3x3; under MoLA-Grad each task group runs with W + (alpha/r) A_t B_t."""

    def __init__(self, cin, cout, stride, adapt):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.adapt = adapt
        if adapt:
            k = 9 * cin
            self.A = nn.Parameter(torch.randn(a.tasks, k, a.rank) / k ** 0.5)
            self.B = nn.Parameter(torch.zeros(a.tasks, a.rank, cout))
            self.scale = a.alpha / a.rank

    def forward(self, x, groups):
        if not self.adapt:
            return self.conv(x)
        outs = []
        for t, lo, hi in groups:
            delta = (self.A[t] @ self.B[t]).view(self.conv.in_channels, 3, 3, -1).permute(3, 0, 1, 2)
            outs.append(F.conv2d(x[lo:hi], self.conv.weight + self.scale * delta, None, self.conv.stride, 1))
        return torch.cat(outs)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = AdaptedConv(cin, cout, stride, ADAPT), nn.BatchNorm2d(cout)
        self.c2, self.b2 = AdaptedConv(cout, cout, 1, ADAPT), nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x, g):
        h = F.relu(self.b1(self.c1(x, g)))
        h = self.b2(self.c2(h, g))
        return F.relu(h + (self.short(x) if self.short is not None else x))


class Net(nn.Module):
    def __init__(self, stem, widths, blocks, stem_adapted):
        super().__init__()
        self.stem = AdaptedConv(a.channels, stem, 1, ADAPT and stem_adapted)
        self.stem_bn = nn.BatchNorm2d(stem)
        layers, cin = [], stem
        for s, (w, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                layers.append(Block(cin, w, 2 if s > 0 and b == 0 else 1))
                cin = w
        self.blocks = nn.ModuleList(layers)
        self.heads = nn.ModuleList([nn.Linear(cin, 10) for _ in range(a.tasks)])

    def forward(self, x, g):
        h = F.relu(self.stem_bn(self.stem(x, g)))
        for b in self.blocks:
            h = b(h, g)
        h = h.mean((2, 3))
        return [self.heads[t](h[lo:hi]) for t, lo, hi in g]


if a.backbone == "resnet18":
    net = Net(64, [64, 128, 256, 512], [2, 2, 2, 2], stem_adapted=True)
else:
    net = Net(16, [16, 32, 64], [1, 1, 1], stem_adapted=False)
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
x = torch.randn(a.batch, a.channels, a.side, a.side)
if a.channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (a.batch,))
model = net  # its parameters; `net` is what steps (compiled with --compile)
if a.compile:
    net = torch.compile(net)
groups = [(t, t * a.batch // a.tasks, (t + 1) * a.batch // a.tasks) for t in range(a.tasks)]


def peak_rss_mb():
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries a parent's peak
    across fork and exec into it, so a child of the big Swift benchmark would report that."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return round(kb / 1024, 1)


def step():
    opt.zero_grad(set_to_none=True)
    logits = net(x, groups)
    loss = sum(F.cross_entropy(l, y[lo:hi]) for l, (t, lo, hi) in zip(logits, groups))
    loss.backward()
    opt.step()


warm = time.perf_counter()
for _ in range(2):  # with --compile: the compilation happens here
    step()
warmup = time.perf_counter() - warm
best = 0.0
for _ in range(a.rounds):
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    best = max(best, a.steps * a.batch / (time.perf_counter() - t))
print(json.dumps({"impl": "pytorch-cpu" + ("-compile" if a.compile else "") + ("-channels-last" if a.channels_last else ""), "torch": torch.__version__,
                  "network": a.backbone, "method": a.method, "side": a.side, "channels": a.channels, "tasks": a.tasks,
                  "threads": a.threads, "batch": a.batch, "parameters": sum(p.numel() for p in model.parameters()),
                  "train_images_per_s": round(best, 1), "warmup_s": round(warmup, 1),
                  "peak_rss_mb": peak_rss_mb()}))
