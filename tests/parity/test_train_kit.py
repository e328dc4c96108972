"""Training toolkit parity with PyTorch 1.13: losses and their gradients (torch.nn.functional in
float64 as the reference), SGD/Adam/AdamW steps with param groups, clipping and resume
(torch.optim), every learning-rate schedule (torch.optim.lr_scheduler, stepped the way
torchvision's reference steps them), parameter grouping rules (torchvision's set_weight_decay on
real architectures) and the EMA of weights (torchvision's ExponentialMovingAverage).

The C side is build/tools/trainkit_tool, fed a JSON job list. Tolerances:
  losses: |loss - ref| <= 1e-9 * max(1, |ref|) (both in double); gradients (float32 here):
          max|d| <= 1e-6 * max(1e-30, max|ref|) + 1e-12
  optimizers: max|param - torch| <= 1e-6 * max|torch param| per tensor, after 1 and 50 steps
  schedules: |lr - torch| <= 1e-12 * base lr (and momentum the same)
  EMA: float tensors max|d| <= 1e-6 * max|ref|, integer buffers exact
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import warnings
from bisect import bisect_right

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cvtest  # noqa: E402
from cvtest import check, finish, save_safetensors, tmpdir  # noqa: E402

warnings.filterwarnings("ignore")
CVISION = os.environ.get("CVISION", "build/cvision")
TOOL = os.path.join(os.path.dirname(os.path.abspath(CVISION)), "tools", "trainkit_tool")
D = tmpdir()
rng = np.random.default_rng(1234)
torch.manual_seed(0)
JOBS = []


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dt[info["dtype"]]).reshape(info["shape"])
    return out


def run_jobs(jobs, expect_fail=()):
    path = os.path.join(D, "jobs.json")
    with open(path, "w") as f:
        json.dump(jobs, f)
    p = subprocess.run([TOOL, path], capture_output=True, text=True, timeout=300)
    for line in p.stderr.splitlines():
        if not any(line.startswith(f"job {i}:") for i in expect_fail):
            print("tool:", line)
    return p


def relmax(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b)) / max(1e-30, float(np.max(np.abs(b))))) if b.size else 0.0


# ---------------------------------------------------------------- losses
LOSS_CASES = []


def add_loss(op, name, logits, target, ref_fn, **kw):
    i = len(LOSS_CASES)
    files = {}
    for key, arr in [("logits", logits), ("target", target), ("weight", kw.get("weight")),
                     ("pos_weight", kw.get("pos_weight"))]:
        if arr is not None:
            files[key] = f"l{i}_{key}.npy"
            np.save(os.path.join(D, files[key]), arr)
    job = {"op": op, "id": f"loss{i}", "out_loss": f"l{i}_loss.npy", "out_grad": f"l{i}_grad.npy", **files}
    if "smoothing" in kw:
        job["smoothing"] = kw["smoothing"]
    if "ignore_index" in kw:
        job["ignore_index"] = kw["ignore_index"]
    JOBS.append(job)
    # reference in float64 on the same (float32) inputs
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = ref_fn(x)
    loss.backward()
    LOSS_CASES.append((name, i, loss.item(), x.grad.numpy().copy()))


def t64(a):
    return None if a is None else torch.tensor(a, dtype=torch.float64)


def ce_case(name, n, k, scale, smoothing=0.0, weighted=False, ignore=None, itype=np.int64):
    x = (rng.standard_normal((n, k)) * scale).astype(np.float32)
    y = rng.integers(0, k, n).astype(itype)
    if ignore is not None:
        y[rng.random(n) < 0.3] = ignore
        y[0] = ignore
    w = (rng.random(k) * 2 + 0.1).astype(np.float32) if weighted else None
    kw = {"smoothing": smoothing, "weight": w}
    if ignore is not None:
        kw["ignore_index"] = ignore

    def ref(t):
        return F.cross_entropy(t, torch.tensor(y.astype(np.int64)), weight=t64(w),
                               ignore_index=ignore if ignore is not None else -100,
                               label_smoothing=smoothing)
    add_loss("ce", name, x, y, ref, **kw)


ce_case("ce plain", 16, 10, 3.0)
ce_case("ce large logits", 16, 10, 1e4)
ce_case("ce smoothing", 16, 10, 3.0, smoothing=0.1)
ce_case("ce weights", 16, 7, 3.0, weighted=True)
ce_case("ce weights+smoothing", 32, 7, 5.0, smoothing=0.2, weighted=True)
ce_case("ce ignore+weights+smoothing", 32, 5, 2.0, smoothing=0.3, weighted=True, ignore=-100)
ce_case("ce ignore in range", 20, 6, 2.0, smoothing=0.1, ignore=2)
ce_case("ce int32 targets", 8, 4, 1.0, itype=np.int32)
ce_case("ce one class", 5, 1, 1.0, smoothing=0.1)
ce_case("ce one sample", 1, 1000, 10.0, smoothing=0.1, weighted=True)
ce_case("ce smoothing 1", 8, 3, 1.0, smoothing=1.0)


def soft_case(name, n, k, scale, smoothing=0.0, weighted=False):
    x = (rng.standard_normal((n, k)) * scale).astype(np.float32)
    t = rng.dirichlet(np.ones(k), n).astype(np.float32)
    w = (rng.random(k) + 0.5).astype(np.float32) if weighted else None
    add_loss("soft_ce", name, x, t,
             lambda v: F.cross_entropy(v, torch.tensor(t, dtype=torch.float64), weight=t64(w),
                                       label_smoothing=smoothing),
             smoothing=smoothing, weight=w)


soft_case("soft ce", 16, 10, 3.0)
soft_case("soft ce smoothing+weights", 16, 10, 50.0, smoothing=0.1, weighted=True)
# MixUp of one-hot targets, as the trainer builds them
x = (rng.standard_normal((8, 5)) * 4).astype(np.float32)
eye = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 8)]
mixed = (0.7 * eye + 0.3 * eye[::-1]).astype(np.float32)
add_loss("soft_ce", "soft ce mixup", x, mixed,
         lambda v: F.cross_entropy(v, torch.tensor(mixed, dtype=torch.float64)))


def bce_case(name, n, k, scale, soft=False, weighted=False, pos=False):
    x = (rng.standard_normal((n, k)) * scale).astype(np.float32)
    t = (rng.random((n, k)) if soft else rng.integers(0, 2, (n, k))).astype(np.float32)
    w = (rng.random(k) + 0.5).astype(np.float32) if weighted else None
    pw = (rng.random(k) * 3 + 0.2).astype(np.float32) if pos else None
    add_loss("bce", name, x, t,
             lambda v: F.binary_cross_entropy_with_logits(v, torch.tensor(t, dtype=torch.float64),
                                                          weight=t64(w), pos_weight=t64(pw)),
             weight=w, pos_weight=pw)


bce_case("bce", 16, 6, 2.0)
bce_case("bce large logits", 16, 6, 200.0, pos=True)
bce_case("bce soft+weight+pos_weight", 16, 6, 3.0, soft=True, weighted=True, pos=True)

for op, fn in [("l1", F.l1_loss), ("mse", F.mse_loss)]:
    x = (rng.standard_normal((12, 1)) * 2).astype(np.float32)
    y = rng.integers(0, 5, 12).astype(np.float32)
    x[3, 0] = y[3]  # a zero difference: L1's gradient is 0 there, as torch.sign
    add_loss(op, f"{op} regression", x, y,
             lambda v, y=y, fn=fn: fn(v.reshape(-1), torch.tensor(y, dtype=torch.float64)))

# ---------------------------------------------------------------- parameter groups on real models


def tv_set_weight_decay(model, weight_decay, norm_weight_decay=None, custom_keys_weight_decay=None):
    """torchvision references/classification/utils.py set_weight_decay, returning name -> decay."""
    norm_classes = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                    nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)
    custom = dict(custom_keys_weight_decay or [])
    out = {}

    def add(module, prefix=""):
        for name, p in module.named_parameters(recurse=False):
            full = f"{prefix}.{name}" if prefix else name
            for key, wd in custom.items():
                target = f"{prefix}.{name}" if prefix != "" and "." in key else name
                if key == target:
                    out[full] = wd
                    break
            else:
                if norm_weight_decay is not None and isinstance(module, norm_classes):
                    out[full] = norm_weight_decay
                else:
                    out[full] = weight_decay
        for cname, child in module.named_children():
            add(child, f"{prefix}.{cname}" if prefix else cname)
    add(model)
    return out


def longest_prefix_mult(spec, name):
    best, mult = -1, 1.0
    for item in spec.split(",") if spec else []:
        pre, val = item.split("=")
        if name.startswith(pre) and len(pre) >= best:
            best, mult = len(pre), float(val)
    return mult


GROUP_CASES = []
for arch in ["resnet18", "mobilenet_v3_small", "convnext_tiny", "efficientnet_b0", "swin_t",
             "vit_b_16"]:
    model = getattr(torchvision.models, arch)()
    params = {n: p for n, p in model.named_parameters()}
    for norm_wd, bias_wd in [(0.0, None), (None, 0.0), (1e-5, 0.0), (0.0, 2e-5)]:
        i = len(JOBS)
        custom = [("bias", bias_wd)] if bias_wd is not None else None
        want = tv_set_weight_decay(model, 1e-4, norm_wd, custom)
        # parameters as zero-size stand-ins are not possible (shapes matter), so the tool gets
        # the real shapes through a params file of zeros only for the small models
        GROUP_CASES.append((arch, norm_wd, bias_wd, i, want))
        rules = {"lr_mults": "features.=0.5,features.0.=0.1,head=10,fc.=10,classifier.=10"}
        if norm_wd is not None:
            rules["norm_weight_decay"] = norm_wd
        if bias_wd is not None:
            rules["bias_weight_decay"] = bias_wd
        JOBS.append({"op": "groups", "id": f"groups{i}",
                     "shapes": [[n, list(p.shape)] for n, p in params.items()],
                     "config": {"kind": "sgd", "weight_decay": 1e-4}, "rules": rules,
                     "out_groups": f"g{i}.json"})
    del model

# ---------------------------------------------------------------- optimizers


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(Block())
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 10)


OPT_CASES = []


def optim_case(name, config, steps, rules=None, clip=0.0, sched=None, spe=1, resume_at=-1,
               lr_seq=None, grad_scale=1.0):
    i = len(JOBS)
    net = Net()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    save_safetensors(state, os.path.join(D, f"o{i}_params.safetensors"))
    names = [n for n, _ in net.named_parameters()]
    grads = {n: (torch.randn((steps,) + tuple(p.shape)) * grad_scale) for n, p in net.named_parameters()}
    save_safetensors(grads, os.path.join(D, f"o{i}_grads.safetensors"))
    job = {"op": "optim", "id": f"optim{i}", "config": config, "steps": steps,
           "params": f"o{i}_params.safetensors", "grads": f"o{i}_grads.safetensors",
           "out": f"o{i}_out.safetensors", "out_groups": f"o{i}_groups.json",
           "clip": clip, "resume_at": resume_at, "steps_per_epoch": spe, "out_norms": f"o{i}_norms.npy"}
    if rules:
        job["rules"] = rules
    if sched:
        job["sched"] = sched
    else:
        job["lrs"] = lr_seq if lr_seq is not None else [config["lr"]] * steps
    JOBS.append(job)

    # the same in PyTorch: groups by (weight decay, lr multiplier), trainable only
    rules = rules or {}
    custom = [("bias", rules["bias_weight_decay"])] if "bias_weight_decay" in rules else None
    wd_of = tv_set_weight_decay(net, config.get("weight_decay", 0.0), rules.get("norm_weight_decay"), custom)
    groups = {}
    params = dict(net.named_parameters())
    for n in names:
        tr = rules.get("trainable")
        if tr and not any(n.startswith(p) for p in tr.split(",")):
            continue
        m = longest_prefix_mult(rules.get("lr_mults"), n)
        if m == 0:
            continue
        groups.setdefault((wd_of[n], m), []).append(n)
    kind = config["kind"]
    base_lr = config["lr"]
    pg = [{"params": [params[n] for n in ns], "lr": base_lr * m, "weight_decay": wd} for (wd, m), ns in groups.items()]
    if kind == "sgd":
        opt = torch.optim.SGD(pg, lr=base_lr, momentum=config.get("momentum", 0),
                              dampening=config.get("dampening", 0), nesterov=bool(config.get("nesterov", 0)))
    else:
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        opt = cls(pg, lr=base_lr, betas=(config.get("beta1", 0.9), config.get("beta2", 0.999)),
                  eps=config.get("eps", 1e-8), amsgrad=bool(config.get("amsgrad", 0)))
    scheduler, epochs = None, 0
    if sched:
        scheduler, epochs = torch_scheduler(opt, sched, spe)
    norms = []
    trained = [p for g in pg for p in g["params"]]
    trained_ids = {id(p) for p in trained}
    for s in range(steps):
        for n, p in params.items():
            p.grad = grads[n][s].clone() if id(p) in trained_ids else None
        if clip:
            norms.append(float(torch.nn.utils.clip_grad_norm_(trained, clip)))
        if lr_seq is not None:
            for g, ((wd, m), _) in zip(opt.param_groups, groups.items()):
                g["lr"] = lr_seq[s] * m
        opt.step()
        if scheduler is not None and (sched.startswith("onecycle") or (s + 1) % spe == 0):
            scheduler.step()
    want = {n: p.detach().numpy().copy() for n, p in net.named_parameters()}
    OPT_CASES.append((name, i, want, {n: state[n].numpy() for n in names}, norms, groups))
    return i


def torch_scheduler(opt, spec, spe):
    """torchvision reference's scheduler construction for a cv_sched spec string."""
    toks = spec.split()
    kind, opts = toks[0], dict(zip(toks[1::2], toks[2::2]))
    epochs = int(opts.get("--epochs", 1))
    warm = int(opts.get("--warmup", 0))
    decay = float(opts.get("--warmup-decay", 0.01))
    S = torch.optim.lr_scheduler
    if kind == "onecycle":
        for g in opt.param_groups:
            g.setdefault("momentum", 0.0)
        return S.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], epochs=epochs,
                            steps_per_epoch=spe,
                            pct_start=float(opts.get("--pct-start", 0.3)),
                            anneal_strategy=opts.get("--anneal", "cos"),
                            three_phase=opts.get("--three-phase", "0") == "1",
                            div_factor=float(opts.get("--div-factor", 25.0)),
                            final_div_factor=float(opts.get("--final-div-factor", 1e4))), epochs
    if kind == "step":
        main = S.StepLR(opt, step_size=int(opts.get("--step-size", 30)), gamma=float(opts.get("--gamma", 0.1)))
    elif kind == "multistep":
        main = S.MultiStepLR(opt, milestones=[int(m) for m in opts["--milestones"].split(",")],
                             gamma=float(opts.get("--gamma", 0.1)))
    elif kind == "cosine":
        main = S.CosineAnnealingLR(opt, T_max=epochs - warm, eta_min=float(opts.get("--lr-min", 0)))
    else:
        main = S.LambdaLR(opt, lambda e: 1.0)
    if warm:
        if opts.get("--warmup-method", "linear") == "linear":
            w = S.LinearLR(opt, start_factor=decay, total_iters=warm)
        else:
            w = S.ConstantLR(opt, factor=decay, total_iters=warm)
        return S.SequentialLR(opt, schedulers=[w, main], milestones=[warm]), epochs
    return main, epochs


SGD = {"kind": "sgd", "lr": 0.1}
rules_tv = {"norm_weight_decay": 0.0, "bias_weight_decay": 0.0, "lr_mults": "fc.=10,layer1.=0.5"}
optim_case("sgd 1 step momentum wd", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 1)
optim_case("sgd 50 steps momentum wd", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 50)
optim_case("sgd plain", {**SGD}, 20)
optim_case("sgd dampening", {**SGD, "momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-3}, 20)
optim_case("sgd nesterov groups", {**SGD, "momentum": 0.9, "nesterov": 1, "weight_decay": 5e-4}, 50,
           rules=rules_tv)
optim_case("sgd linear probe", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 10, rules={"trainable": "fc."})
optim_case("sgd clip", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 20, clip=1.0, grad_scale=3.0)
optim_case("sgd no clip needed", {**SGD, "momentum": 0.9}, 5, clip=1e4)
optim_case("adam 1 step", {"kind": "adam", "lr": 1e-3, "weight_decay": 1e-4}, 1)
optim_case("adam 50 steps", {"kind": "adam", "lr": 1e-3, "weight_decay": 1e-4}, 50)
optim_case("adam amsgrad groups", {"kind": "adam", "lr": 1e-3, "amsgrad": 1, "beta1": 0.8}, 50,
           rules=rules_tv)
optim_case("adamw 1 step", {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.05}, 1)
optim_case("adamw 50 steps", {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.05}, 50)
optim_case("adamw amsgrad groups clip", {"kind": "adamw", "lr": 2e-3, "weight_decay": 0.05, "amsgrad": 1},
           50, rules=rules_tv, clip=2.0, grad_scale=2.0)
optim_case("sgd varying lr", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 30,
           lr_seq=[0.1 * (1 + math.cos(math.pi * s / 30)) / 2 for s in range(30)])
optim_case("sgd cosine warmup sched", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 40, rules=rules_tv,
           sched="cosine --epochs 5 --warmup 2 --lr-min 0.001", spe=8)
optim_case("adamw onecycle sched", {"kind": "adamw", "lr": 3e-3, "weight_decay": 0.05}, 40, rules=rules_tv,
           sched="onecycle --epochs 5", spe=8)
optim_case("sgd onecycle sched", {**SGD, "momentum": 0.9, "weight_decay": 1e-4}, 24,
           sched="onecycle --epochs 3", spe=8)
# a resumed run: the C side saves and reloads its state after step 20 (torch never stops)
r_sgd = optim_case("sgd nesterov resumed", {**SGD, "momentum": 0.9, "nesterov": 1, "weight_decay": 5e-4},
                   50, rules=rules_tv, resume_at=20)
r_adam = optim_case("adamw amsgrad resumed", {"kind": "adamw", "lr": 2e-3, "weight_decay": 0.05, "amsgrad": 1},
                    50, rules=rules_tv, resume_at=20)

# ---------------------------------------------------------------- schedules
SCHED_CASES = []
for spec, spe in [("constant --epochs 6", 3), ("constant --epochs 6 --warmup 2", 3),
                  ("step --epochs 12 --step-size 3 --gamma 0.5", 2),
                  ("step --epochs 12 --step-size 3 --gamma 0.5 --warmup 2 --warmup-decay 0.1", 2),
                  ("multistep --epochs 12 --milestones 2,5,9 --gamma 0.3", 2),
                  ("multistep --epochs 12 --milestones 2,5,9 --gamma 0.3 --warmup 3", 2),
                  ("cosine --epochs 10 --lr-min 0.001", 3),
                  ("cosine --epochs 10 --warmup 3 --warmup-decay 0.1 --lr-min 0", 3),
                  ("cosine --epochs 10 --warmup 3 --warmup-method constant", 3),
                  ("onecycle --epochs 4", 7),
                  ("onecycle --epochs 3 --three-phase 1 --anneal linear --pct-start 0.25", 5),
                  ("onecycle --epochs 2 --div-factor 10 --final-div-factor 100 --pct-start 0.5", 3)]:
    i = len(JOBS)
    base = 0.4
    JOBS.append({"op": "sched", "id": f"sched{i}", "spec": spec, "steps_per_epoch": spe, "lr": base,
                 "out_lr": f"s{i}_lr.npy", "out_momentum": f"s{i}_mom.npy"})
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base, momentum=0.9)
    sch, epochs = torch_scheduler(opt, spec, spe)
    lrs, moms = [], []
    for e in range(epochs):
        for s in range(spe):
            lrs.append(opt.param_groups[0]["lr"])
            moms.append(opt.param_groups[0]["momentum"] if spec.startswith("onecycle") else math.nan)
            opt.step()
            if spec.startswith("onecycle"):
                sch.step()
        if not spec.startswith("onecycle"):
            sch.step()
    SCHED_CASES.append((spec, i, base, np.array(lrs), np.array(moms)))

# schedule specs that must be refused
BAD_SCHED = ["cosine --epochs 3 --warmup 3", "onecycle --epochs 3 --warmup 1", "wavy",
             "step --step-size 0", "multistep --milestones 5,2", "cosine --lr-min x",
             "cosine --bogus 1", "cosine step"]
for k, spec in enumerate(BAD_SCHED):
    JOBS.append({"op": "sched", "id": f"badsched{k}", "spec": spec, "out_lr": "x.npy", "out_momentum": "y.npy"})

# ---------------------------------------------------------------- EMA


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)


tiny = Tiny()
U = 12
snaps = []
for u in range(U):
    with torch.no_grad():
        for p in tiny.parameters():
            p.add_(torch.randn_like(p))
        tiny.bn.running_mean.add_(torch.randn(4))
        tiny.bn.running_var.mul_(1.1)
        tiny.bn.num_batches_tracked.add_(37)
    snaps.append({k: v.clone() for k, v in tiny.state_dict().items()})
stacked = {k: torch.stack([s[k] for s in snaps]) for k in snaps[0]}
save_safetensors(stacked, os.path.join(D, "ema_states.safetensors"))
iters = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
warm = [True, True, True, False, False, False, False, False, False, False, False, False]
decay, every = 0.7, 2
JOBS.append({"op": "ema", "id": "ema", "states": "ema_states.safetensors", "decay": decay, "every": every,
             "iters": iters, "warmup": warm, "out": "ema_out.safetensors"})
# torchvision's ExponentialMovingAverage and its use in train_one_epoch
ref_model = Tiny()
ema_ref = torch.optim.swa_utils.AveragedModel(
    ref_model, avg_fn=lambda a, m, n: decay * a + (1 - decay) * m, use_buffers=True)
for u in range(U):
    ref_model.load_state_dict(snaps[u])
    if iters[u] % every == 0:
        ema_ref.update_parameters(ref_model)
        if warm[u]:
            ema_ref.n_averaged.fill_(0)
ema_want = {k: v.numpy() for k, v in ema_ref.module.state_dict().items()}

# ---------------------------------------------------------------- checkpoint and runs database
ck_model = torchvision.models.resnet18(num_classes=7)
ck_model.train()
with torch.no_grad():
    ck_model(torch.randn(2, 3, 32, 32))  # moves running stats and num_batches_tracked
ck_state = {k: v.clone() for k, v in ck_model.state_dict().items()}
save_safetensors(ck_state, os.path.join(D, "ck_in.safetensors"))
ck_extra = {"args": {"lr": 0.1, "epochs": 3}, "seed": 7, "epoch": 2, "step": 120,
            "classes": ["a", "b", "c", "d", "e", "f", "g"], "metrics": {"acc1": 0.5}}
JOBS.append({"op": "checkpoint", "id": "checkpoint", "state": "ck_in.safetensors", "dir": "ck",
             "tag": "best", "extra": ck_extra})

RUNS = [{"arch": "resnet18", "data": "npy:X.npy,Y.npy", "args": {"lr": 0.1, "batch": 32, "opt": "sgd"},
         "seed": 1, "metric": "acc1", "out_dir": "out1", "status": "finished",
         "epochs": [{"epoch": e, "loss": 2.0 / (e + 1), "lr": 0.1 * 0.5 ** e, "seconds": 10.0 + e,
                     "metrics": {"acc1": [0.3, 0.6, 0.5][e], "f1": 0.1 * e}} for e in range(3)],
         "artifacts": [{"kind": "checkpoint", "path": os.path.join(D, "ck_in.safetensors")}]},
        {"arch": "resnet18", "data": "npy:X.npy,Y.npy", "args": {"lr": 0.01, "batch": 32, "opt": "adamw"},
         "seed": 2, "metric": "acc1", "out_dir": "out2",
         "epochs": [{"epoch": 0, "loss": 1.5, "lr": 0.01, "seconds": 9.0, "metrics": {"acc1": 0.7}}]}]
JOBS.append({"op": "runs", "id": "runs", "db": "runs.sqlite", "runs": RUNS})

# ---------------------------------------------------------------- run everything
p = run_jobs(JOBS, expect_fail=[f"badsched{k}" for k in range(len(BAD_SCHED))])
check(p.returncode in (0, 3), f"trainkit_tool ran (rc {p.returncode})")

for name, i, ref_loss, ref_grad in LOSS_CASES:
    try:
        got = float(np.load(os.path.join(D, f"l{i}_loss.npy"))[0])
        g = np.load(os.path.join(D, f"l{i}_grad.npy"))
    except OSError:
        check(False, f"{name}: no output")
        continue
    ok_loss = abs(got - ref_loss) <= 1e-9 * max(1.0, abs(ref_loss))
    gerr = np.max(np.abs(g - ref_grad)) if g.shape == ref_grad.shape else math.inf
    ok_grad = gerr <= 1e-6 * max(1e-30, float(np.max(np.abs(ref_grad)))) + 1e-12
    check(ok_loss and ok_grad, f"{name}: loss {got:.12g} vs torch {ref_loss:.12g}, grad max|d| {gerr:.3g}")

for arch, norm_wd, bias_wd, i, want in GROUP_CASES:
    try:
        got = {e["name"]: e for e in json.load(open(os.path.join(D, f"g{i}.json")))}
    except OSError:
        check(False, f"groups {arch}: no output")
        continue
    spec = "features.=0.5,features.0.=0.1,head=10,fc.=10,classifier.=10"
    bad = [n for n in want if n not in got or got[n]["weight_decay"] != want[n]
           or got[n]["lr_mult"] != longest_prefix_mult(spec, n)]
    check(not bad and len(got) == len(want),
          f"groups {arch} norm_wd={norm_wd} bias_wd={bias_wd}: decay/multiplier as torchvision"
          + (f" (differs: {bad[:4]})" if bad else ""))

for name, i, want, start, norms, groups in OPT_CASES:
    try:
        got = read_safetensors(os.path.join(D, f"o{i}_out.safetensors"))
    except OSError:
        check(False, f"{name}: no output")
        continue
    worst = max(relmax(got[n], want[n]) for n in want)
    trained = {n for ns in groups.values() for n in ns}
    frozen_ok = all(np.array_equal(got[n], start[n]) for n in want if n not in trained)
    msg = f"{name}: max|d|/max|p| = {worst:.3g}"
    if norms:
        cn = np.load(os.path.join(D, f"o{i}_norms.npy"))
        nerr = relmax(cn, norms)
        msg += f", clip norms max rel d {nerr:.3g}"
        worst = max(worst, nerr)
    check(worst <= 1e-6 and frozen_ok, msg + ("" if frozen_ok else ", a frozen parameter changed"))

# resumed runs equal the uninterrupted C runs bit for bit: rerun those two jobs without resume
plain = []
for idx in (r_sgd, r_adam):
    j = dict(JOBS[idx])
    j["resume_at"] = -1
    j["out"] = f"o{idx}_plain.safetensors"
    plain.append(j)
run_jobs(plain)
for idx in (r_sgd, r_adam):
    a = read_safetensors(os.path.join(D, f"o{idx}_out.safetensors"))
    b = read_safetensors(os.path.join(D, f"o{idx}_plain.safetensors"))
    check(all(np.array_equal(a[n], b[n]) for n in b), f"{JOBS[idx]['id']}: resumed run is bit-exact")

for spec, i, base, lrs, moms in SCHED_CASES:
    try:
        got = np.load(os.path.join(D, f"s{i}_lr.npy"))
        gm = np.load(os.path.join(D, f"s{i}_mom.npy"))
    except OSError:
        check(False, f"schedule '{spec}': no output")
        continue
    ok = got.shape == lrs.shape and np.max(np.abs(got - lrs)) <= 1e-12 * base
    okm = gm.shape == moms.shape and np.allclose(gm, moms, rtol=0, atol=1e-12, equal_nan=True)
    check(ok and okm, f"schedule '{spec}': {len(lrs)} lrs and momenta as torch"
          + ("" if ok else f" (got {got[:8]}, want {lrs[:8]})"))
for k, spec in enumerate(BAD_SCHED):
    check(os.path.exists(os.path.join(D, f"badsched{k}.error")), f"schedule '{spec}' is refused")

try:
    got = read_safetensors(os.path.join(D, "ema_out.safetensors"))
    for k, v in ema_want.items():
        if v.dtype == np.int64:
            check(np.array_equal(got[k], v), f"ema {k}: {got[k]} == torch {v}")
        else:
            check(relmax(got[k], v) <= 1e-6, f"ema {k}: max|d| rel {relmax(got[k], v):.3g}")
except OSError:
    check(False, "ema: no output")

# the checkpoint loads into PyTorch strictly, with its sidecar committing the file's hash
try:
    import hashlib
    got = read_safetensors(os.path.join(D, "ck", "best.safetensors"))
    fresh = torchvision.models.resnet18(num_classes=7)
    fresh.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in got.items()}, strict=True)
    same = all(torch.equal(fresh.state_dict()[k], v) for k, v in ck_state.items())
    nbt = got["bn1.num_batches_tracked"]
    check(same and nbt.dtype == np.int64 and nbt.shape == () and list(got) == list(ck_state),
          "checkpoint: best.safetensors loads with load_state_dict(strict=True), same tensors and order")
    side = json.load(open(os.path.join(D, "ck", "best.json")))
    digest = hashlib.sha256(open(os.path.join(D, "ck", "best.safetensors"), "rb").read()).hexdigest()
    check(side["files"]["model"]["sha256"] == digest and side["tag"] == "best"
          and all(side[k] == v for k, v in ck_extra.items()) and "optim" not in side["files"],
          "checkpoint: best.json records the hash and the extra members")
except (OSError, KeyError, RuntimeError) as e:
    check(False, f"checkpoint: {e}")

# the runs database: schema and WAL mode seen by Python's sqlite3, then the CLI
import sqlite3  # noqa: E402
db = os.path.join(D, "runs.sqlite")
con = sqlite3.connect(db)
check(con.execute("PRAGMA journal_mode").fetchone()[0] == "wal", "runs: the database is in WAL mode")
rows = con.execute("SELECT id, status, arch, seed, best_metric, best_epoch, metric FROM runs ORDER BY id").fetchall()
check(rows == [(1, "finished", "resnet18", 1, 0.6, 1, "acc1"), (2, "running", "resnet18", 2, 0.7, 0, "acc1")],
      f"runs: rows as recorded ({rows})")
n_ep = con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
art = con.execute("SELECT kind, sha256 FROM artifacts").fetchall()
con.close()
check(n_ep == 4 and art == [("checkpoint", hashlib.sha256(open(os.path.join(D, "ck_in.safetensors"), "rb").read()).hexdigest())],
      "runs: epochs and artefacts (sha256 computed from the file)")


def cli(*args):
    return subprocess.run([CVISION, "runs", *args], capture_output=True, text=True, timeout=60)


p = cli("list", "--db", D, "--json")
lst = json.loads(p.stdout) if p.returncode == 0 else []
check([(r["id"], r["epochs"], r["status"]) for r in lst] == [(2, 1, "running"), (1, 3, "finished")],
      "cvision runs list --json: newest first with epoch counts")
p = cli("show", "1", "--db", db, "--json")
one = json.loads(p.stdout) if p.returncode == 0 else {}
eps = one.get("epochs", [])
check(one.get("args") == RUNS[0]["args"] and [e["val_metrics"] for e in eps] == [e["metrics"] for e in RUNS[0]["epochs"]]
      and [e["lr"] for e in eps] == [e["lr"] for e in RUNS[0]["epochs"]] and len(one.get("artifacts", [])) == 1,
      "cvision runs show --json: arguments, per-epoch metrics, artefacts")
p = cli("compare", "1", "2", "--db", db, "--json")
cmp_ = json.loads(p.stdout) if p.returncode == 0 else {}
check(cmp_.get("args_diff") == {"lr": [0.1, 0.01], "opt": ["sgd", "adamw"]},
      f"cvision runs compare --json: the differing arguments ({cmp_.get('args_diff')})")
for args in (("list",), ("show", "1"), ("compare", "1", "2")):
    p = cli(*args, "--db", db)
    check(p.returncode == 0 and "resnet18" in p.stdout, f"cvision runs {' '.join(args)} prints a table")
for args, why in ((("show", "9"), "no run 9"), (("show", "x"), "not a run id"),
                  (("list", "--db", os.path.join(D, "nope.sqlite")), "no runs database")):
    p = cli(*args, *(() if "--db" in args else ("--db", db)))
    check(p.returncode == 1 and p.stderr.count("\n") == 1 and why in p.stderr,
          f"cvision runs {' '.join(args)} fails with one line ({p.stderr.strip()})")

if not cvtest._failures:
    shutil.rmtree(D, ignore_errors=True)
finish()
