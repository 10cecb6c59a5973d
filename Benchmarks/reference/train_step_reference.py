"""The resnet-mini MoLA-Grad train step in PyTorch (CPU), for `mola-bench train-step`:
stem conv3x3 1->16 + BN + ReLU; basic blocks of widths 16, 32, 64 (strides 1, 2, 2;
1x1 conv + BN shortcuts); every 3x3 block conv has one rank-4 adapter per task (4 tasks)
and runs once per task group with W + (alpha/r) A B; GAP; a linear head per task; sum of
per-task mean cross-entropies; SGD momentum 0.9, weight decay 5e-4. Prints one JSON line."""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--channels-last", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
TASKS, RANK, ALPHA = 4, 4, 16.0


class AdaptedConv(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        k = 9 * cin
        self.A = nn.Parameter(torch.randn(TASKS, k, RANK) / k ** 0.5)
        self.B = nn.Parameter(torch.zeros(TASKS, RANK, cout))
        self.scale = ALPHA / RANK

    def forward(self, x, groups):
        outs = []
        for t, lo, hi in groups:
            delta = (self.A[t] @ self.B[t]).view(self.conv.in_channels, 3, 3, -1).permute(3, 0, 1, 2)
            outs.append(F.conv2d(x[lo:hi], self.conv.weight + self.scale * delta, None, self.conv.stride, 1))
        return torch.cat(outs)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = AdaptedConv(cin, cout, stride), nn.BatchNorm2d(cout)
        self.c2, self.b2 = AdaptedConv(cout, cout, 1), nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x, g):
        h = F.relu(self.b1(self.c1(x, g)))
        h = self.b2(self.c2(h, g))
        return F.relu(h + (self.short(x) if self.short is not None else x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.ModuleList([Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2)])
        self.heads = nn.ModuleList([nn.Linear(64, 10) for _ in range(TASKS)])

    def forward(self, x, g):
        h = self.stem(x)
        for b in self.blocks:
            h = b(h, g)
        h = h.mean((2, 3))
        return [self.heads[t](h[lo:hi]) for t, lo, hi in g]


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
x = torch.randn(a.batch, 1, 28, 28)
if a.channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (a.batch,))
per = a.batch // TASKS
groups = [(t, t * per, a.batch if t == TASKS - 1 else (t + 1) * per) for t in range(TASKS)]


def step():
    opt.zero_grad(set_to_none=True)
    logits = net(x, groups)
    loss = sum(F.cross_entropy(l, y[lo:hi]) for l, (t, lo, hi) in zip(logits, groups))
    loss.backward()
    opt.step()


for _ in range(3):
    step()
best = 0.0
for _ in range(a.rounds):
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    best = max(best, a.steps * a.batch / (time.perf_counter() - t))
print(json.dumps({"impl": "pytorch-cpu" + ("-channels-last" if a.channels_last else ""), "torch": torch.__version__,
                  "network": "resnet-mini", "threads": a.threads, "batch": a.batch,
                  "parameters": sum(p.numel() for p in net.parameters()), "train_images_per_s": round(best, 1)}))
