#!/usr/bin/env python3
"""Writes Tests/Fixtures/balancer-peers.json: what the peers that define the balancers give
on small cases, for the tests to compare against (CI has no PyTorch).

- Gradient aggregators from TorchJD (pip install torchjd==0.18.0 qpsolvers quadprog
  scipy cvxpy ecos): the combined vector for random Jacobians of 2, 3 and 9 tasks, with
  conflicting rows and with rows around one shared direction. GradDrop's uniform draws and
  GradVac's task order (torch.randperm, made the identity) are fixed and recorded, so the
  Swift side can use the same; GradVac runs four steps per task count (it keeps state).
- Loss weightings from LibMTL (pip install LibMTL==1.1.5 --no-deps): each task loss's
  factor in the gradient, taken by autograd from LibMTL's own objective, over several
  steps for the stateful ones (their learnt scales stepped by torch.optim.Adam).
- STCH, DB-MTL, MoCo and GradNorm, which only LibMTL's GitHub source has (commit 4336804 of
  median-research-group/LibMTL): LIBMTL_SRC names a checkout. Their `backward` runs on a
  stand-in model whose one shared parameter θ makes the task losses l0 + J·(θ − θ0), so
  LibMTL's own gradient code sees the Jacobian J; the step's result is θ's gradient.

Run once, from the repository root, where torch is installed:
    LIBMTL_SRC=path/to/LibMTL-checkout python3 scripts/make-balancer-fixtures.py
"""
import json
import os

import numpy as np
import torch
import torchjd
from torchjd.aggregation import ConFIG, DualProj, FairGrad, GradDrop, GradVac, IMTLG, NashMTL, UPGrad
# LibMTL's package __init__ imports its models, which want an old torchvision; the
# weightings need none of it.
import sys
import types
for name in ("torchvision", "torchvision.models", "torchvision.models.utils"):
    sys.modules.setdefault(name, types.ModuleType(name))
sys.modules["torchvision.models.utils"].load_state_dict_from_url = None
from LibMTL.weighting import DWA, GLS, UW
# The GitHub source's weightings, loaded without its package __init__ (which imports its
# trainer and torch_geometric).
import importlib.util
def github_weighting(name):
    root = os.path.join(os.environ["LIBMTL_SRC"], "LibMTL", "weighting")
    spec = importlib.util.spec_from_file_location(f"libmtl_github_{name}", os.path.join(root, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    source = open(os.path.join(root, name + ".py")).read()
    abstract = importlib.util.spec_from_file_location("libmtl_github_abstract", os.path.join(root, "abstract_weighting.py"))
    abstract_module = importlib.util.module_from_spec(abstract)
    abstract.loader.exec_module(abstract_module)
    sys.modules["LibMTL.weighting.abstract_weighting"] = abstract_module
    spec.loader.exec_module(module)
    return getattr(module, name)
STCH, DB_MTL, MoCo, GradNorm = (github_weighting(n) for n in ("STCH", "DB_MTL", "MoCo", "GradNorm"))

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(23)


def jacobian(tasks, kind, dim=24):
    if kind == "conflicting":
        m = rng.normal(size=(tasks, dim))
    else:  # around one shared direction: every pair agrees
        m = rng.normal(size=(1, dim)) * 2 + rng.normal(size=(tasks, dim)) * 0.5
    m *= rng.uniform(0.2, 3.0, size=(tasks, 1))  # unequal sizes
    return m.astype(np.float32).astype(np.float64)  # exactly representable in Float


cases = [{"name": f"{t} tasks, {k}", "rows": jacobian(t, k).tolist()}
         for t in (2, 3, 9) for k in ("conflicting", "aligned")]
aggregators = {"upgrad": UPGrad(), "dualproj": DualProj(), "imtl-g": IMTLG(), "config": ConFIG()}
combined = {name: [agg(torch.tensor(c["rows"])).tolist() for c in cases] for name, agg in aggregators.items()}
combined["nash-mtl"] = [NashMTL(n_tasks=len(c["rows"]))(torch.tensor(c["rows"])).tolist() for c in cases]
for alpha in (1, 2):
    combined[f"fairgrad-{alpha}"] = [FairGrad(alpha=alpha)(torch.tensor(c["rows"])).tolist() for c in cases]

uniforms = [torch.rand(len(c["rows"][0])).tolist() for c in cases]
real_rand = torch.rand
for c, u in zip(cases, uniforms):
    torch.rand = lambda *a, u=u, **k: torch.tensor(u)
    combined.setdefault("graddrop", []).append(GradDrop()(torch.tensor(c["rows"])).tolist())
torch.rand = real_rand

torch.randperm = lambda n, **k: torch.arange(n)  # GradVac's order: fixed
gradvac = []
for t in (2, 3, 9):
    agg = GradVac()
    steps_of = [jacobian(t, "conflicting" if s % 2 == 0 else "aligned").tolist() for s in range(4)]
    gradvac.append({"steps": steps_of, "combined": [agg(torch.tensor(j)).tolist() for j in steps_of]})


def libmtl(cls, tasks):
    w = cls()
    w.task_num, w.device, w.rep_grad = tasks, torch.device("cpu"), False
    if hasattr(w, "init_param"):
        w.init_param()
    return w


def factors(w, losses, **kwargs):
    """The gradient of LibMTL's objective with respect to each task loss."""
    l = torch.tensor(losses, requires_grad=True)
    w.backward(l, **kwargs)
    return l.grad.tolist()


losses = [[float(x) for x in rng.uniform(0.2, 3.0, size=t)] for t in (2, 3, 9)]
steps = [[float(x) for x in 2.0 * np.exp(-0.1 * s) * rng.uniform(0.5, 1.5, size=3)] for s in range(6)]

gls = [factors(libmtl(GLS, len(l)), l) for l in losses]

# DWA weights each epoch from the mean losses of the two before it (temperature 2).
epochs = [[float(x) for x in 2.0 * np.exp(-0.3 * e) * rng.uniform(0.7, 1.3, size=3)] for e in range(5)]
dwa = []
for e in range(len(epochs) + 1):
    w = libmtl(DWA, 3)
    w.epoch = e
    w.train_loss_buffer = np.array(epochs + [[0.0] * 3]).T
    dwa.append(factors(w, [1.0, 1.0, 1.0], T=2.0))


def learnt_scales(backward, scale, lr):
    """Per-task scales learnt by Adam from `backward` (which fills the gradients of the losses
    and of `scale`): each step's loss factors and the scales after the step."""
    opt = torch.optim.Adam([scale], lr=lr)
    out = []
    for l in steps:
        opt.zero_grad()
        t = torch.tensor(l, requires_grad=True)
        backward(t)
        opt.step()
        out.append({"factors": t.grad.tolist(), "scales": scale.detach().tolist()})
    return out


# UW through LibMTL's class (its loss_scale, from -0.5, is the learnt parameter).
uw_object = libmtl(UW, 3)
uw = learnt_scales(uw_object.backward, uw_object.loss_scale, 0.01)
# IMTL-L is the loss half of LibMTL's IMTL (whose backward also needs a model): e^s·l - s,
# s from 0, written here as in LibMTL's IMTL.backward.
imtl_scale = torch.nn.Parameter(torch.zeros(3))
imtl_l = learnt_scales(lambda l: (imtl_scale.exp() * l - imtl_scale).sum().backward(), imtl_scale, 0.01)



def stand_in(cls, tasks, dim):
    """A LibMTL weighting on a model with one shared parameter θ."""
    w = cls()
    w.task_num, w.device, w.rep_grad, w.epoch = tasks, torch.device("cpu"), False, 0
    theta = torch.nn.Parameter(torch.zeros(dim))
    w.get_share_params = lambda: [theta]
    w.zero_grad_share_params = lambda: theta.grad.zero_() if theta.grad is not None else None
    w.init_param()
    return w, theta


def run_steps(cls, kwargs):
    out = []
    for t in (2, 3, 9):
        w, theta = stand_in(cls, t, 24)
        seq = {"steps": [], "losses": [], "combined": []}
        for s in range(4):
            j = jacobian(t, "conflicting" if s % 2 == 0 else "aligned")
            l0 = rng.uniform(0.3, 2.5, size=t)
            losses = torch.tensor(l0) + torch.tensor(j) @ theta
            theta.grad = None
            w.backward(losses, **kwargs)
            seq["steps"].append(j.tolist()); seq["losses"].append(l0.tolist()); seq["combined"].append(theta.grad.tolist())
        out.append(seq)
    return out


dbmtl = run_steps(DB_MTL, {"DB_beta": 0.9, "DB_beta_sigma": 0})
moco = run_steps(MoCo, {"MoCo_beta": 0.5, "MoCo_beta_sigma": 0.5, "MoCo_gamma": 0.1, "MoCo_gamma_sigma": 0.5, "MoCo_rho": 0})

# GradNorm in its second epoch (the first is the plain sum), L0 the first epoch's mean
# losses; its loss_scale stepped by Adam (lr 0.01) after each backward.
gradnorm = []
for t in (2, 3, 9):
    w, theta = stand_in(GradNorm, t, 24)
    w.epoch = 1
    first = rng.uniform(0.5, 2.5, size=t)
    w.train_loss_buffer = np.stack([first, np.zeros(t)], axis=1)
    opt = torch.optim.Adam([w.loss_scale], lr=0.01)
    seq = {"first": first.tolist(), "steps": [], "losses": [], "combined": [], "scales": []}
    for s in range(4):
        j = jacobian(t, "conflicting" if s % 2 == 0 else "aligned")
        l0 = first * rng.uniform(0.4, 1.1, size=t)
        task_losses = torch.tensor(l0) + torch.tensor(j) @ theta
        theta.grad = None
        opt.zero_grad()
        w.backward(task_losses, alpha=1.5)
        opt.step()
        seq["steps"].append(j.tolist()); seq["losses"].append(l0.tolist()); seq["combined"].append(theta.grad.tolist())
        seq["scales"].append(w.loss_scale.detach().tolist())
    gradnorm.append(seq)

# STCH over epochs: warm-up (log-losses), the nadir epoch, then the smooth Tchebycheff.
stch_w, _ = stand_in(STCH, 3, 1)
stch = {"epochs": [], "losses": [], "factors": []}
for e in range(7):
    stch_w.epoch = e
    for s in range(2):
        l = [float(x) for x in 2.0 * np.exp(-0.2 * e) * rng.uniform(0.5, 1.5, size=3)]
        stch["epochs"].append(e); stch["losses"].append(l)
        stch["factors"].append(factors(stch_w, l, STCH_mu=1.0, STCH_warmup_epoch=4))

out = {
    "generator": f"scripts/make-balancer-fixtures.py, torch {torch.__version__}, torchjd {torchjd.__version__ if hasattr(torchjd, '__version__') else '0.18'}",
    "jacobians": cases,
    "combined": combined,
    "uniforms": uniforms,
    "gradvac": gradvac,
    "losses": losses,
    "gls": gls,
    "dwa": {"epochs": epochs, "factors": dwa},
    "steps": steps,
    "uw": uw,
    "imtl-l": imtl_l,
    "db-mtl": dbmtl,
    "moco": moco,
    "gradnorm": gradnorm,
    "stch": stch,
}
path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "balancer-peers.json")
def plain(x):
    """Tensors and arrays as lists, for JSON."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x.tolist() if hasattr(x, "tolist") else x


with open(path + ".partial", "w") as f:  # atomic: a failed run leaves the old file
    json.dump(plain(out), f)
os.replace(path + ".partial", path)
print(f"wrote {os.path.normpath(path)}")
