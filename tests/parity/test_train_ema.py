"""Evaluation with the EMA of weights during training (`cvision train --ema DECAY`).

A tiny deterministic run (resnet18, 32x32 npy images, no shuffling, 2 SGD steps per epoch, EMA
updated every step) must:
  * hold in last.optim.safetensors the EMA that PyTorch recomputes from the models after step 1
    (a second run stopped there) and after step 2: e = d*m1 + (1-d)*m2 in float32, running
    statistics included, num_batches_tracked truncated (max|d| <= 1e-6 relative to each tensor);
  * report, in the sidecar, validation metrics of the model (`val_metrics`) and of the EMA
    (`ema_val_metrics`) equal to PyTorch's evaluation of those weights (eval mode) on the
    validation images: the same accuracy, log loss within 1e-4 relative;
  * select the better of the two on the metric (log loss here), record which in `weights`, and
    write exactly those weights to best.safetensors.
Run twice (decay 0.5 with lr 0.05: the EMA wins; decay 0.999 with lr 0.001: the model wins), so
that both branches of the selection are exercised."""
import json
import os

import numpy as np
import torch
import torchvision

from cvtest import check, finish, load_safetensors, run, tmpdir

N, NV, S, K, BATCH = 32, 24, 32, 10, 16


def images(rng, n):
    yy, xx = np.mgrid[0:S, 0:S] / S
    x = np.zeros((n, S, S, 3))
    for i in range(n):
        for c in range(3):
            a, b, ph = rng.uniform(0.5, 3, 3)
            x[i, :, :, c] = 0.5 + 0.4 * np.sin(2 * np.pi * (a * xx + b * yy) + 6 * ph)
    return (x * 255).round().astype(np.uint8)


def evaluate(state, x, y):
    """(accuracy, log loss) of torchvision's resnet18 with `state`, eval mode."""
    model = torchvision.models.resnet18(num_classes=K)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).double()
    p = torch.softmax(logits, 1).clamp(1e-15, 1 - 1e-15)
    p = p / p.sum(1, keepdim=True)  # sklearn's log_loss renormalises the clipped scores
    acc = float((logits.argmax(1).numpy() == y).mean())
    return acc, float(-torch.log(p[torch.arange(len(y)), torch.from_numpy(y)]).mean())


def train(d, out, decay, lr, steps):
    run("train", "-m", "resnet18", "--data", f"npy:{d}/X.npy,{d}/Y.npy",
        *(["--val", f"npy:{d}/XV.npy,{d}/YV.npy"] if steps > 1 else ["--val-fraction", "0"]),
        "--out", out, "--epochs", 1, "--batch", BATCH, "--max-steps", steps, "--lr", lr,
        "--ema", decay, "--metric", "log_loss", "--train-transform", "to_tensor", "--eval-transform",
        "to_tensor", "--no-shuffle", "--quiet", "--workers", 1, "--threads", 2, "--seed", 3)


def relerr(a, b):
    return float((a.double() - b.double()).abs().max()) / max(float(b.double().abs().max()), 1e-12)


def main():
    d = tmpdir()
    rng = np.random.default_rng(0)
    x, xv = images(rng, N), images(rng, NV)
    y, yv = (np.arange(N) % K).astype(np.int64), (np.arange(NV) % K).astype(np.int64)
    for name, a in [("X", x), ("Y", y), ("XV", xv), ("YV", yv)]:
        np.save(os.path.join(d, f"{name}.npy"), a)
    picked = set()
    for decay, lr in [(0.5, 0.05), (0.999, 0.001)]:
        full, first = os.path.join(d, f"full-{decay}"), os.path.join(d, f"first-{decay}")
        train(d, full, decay, lr, 2)
        train(d, first, decay, lr, 1)
        m1 = load_safetensors(os.path.join(first, "last.safetensors"))
        m2 = load_safetensors(os.path.join(full, "last.safetensors"))
        opt = load_safetensors(os.path.join(full, "last.optim.safetensors"))
        ema = {k[4:]: v for k, v in opt.items() if k.startswith("ema/") and k != "ema/n_averaged"}
        worst = 0.0
        for k, v in m2.items():
            if v.is_floating_point():
                want = torch.tensor(decay, dtype=torch.float32) * m1[k] + \
                    torch.tensor(1 - decay, dtype=torch.float32) * v
                worst = max(worst, relerr(ema[k], want))
            else:
                check(int(ema[k]) == int(decay * int(m1[k]) + (1 - decay) * int(v)), f"EMA {k}")
        check(worst <= 1e-6, f"decay {decay}: EMA = d*m1 + (1-d)*m2 within {worst:.2e} relative")

        side = json.load(open(os.path.join(full, "last.json")))
        for key, state in [("val_metrics", m2), ("ema_val_metrics", ema)]:
            acc, ll = evaluate(state, xv, yv)
            got = side[key]
            check(abs(got["accuracy_score"] - acc) < 1e-9,
                  f"decay {decay} {key}: accuracy {got['accuracy_score']} == PyTorch {acc}")
            check(abs(got["log_loss"] - ll) <= 1e-4 * ll,
                  f"decay {decay} {key}: log loss {got['log_loss']:.6f} vs PyTorch {ll:.6f}")
        use_ema = side["ema_val_metrics"]["log_loss"] < side["val_metrics"]["log_loss"]
        check(side["weights"] == ("ema" if use_ema else "model"), f"decay {decay}: selected {side['weights']}")
        picked.add(side["weights"])
        best = load_safetensors(os.path.join(full, "best.safetensors"))
        want = ema if use_ema else m2
        check(all(torch.equal(best[k], want[k].to(best[k].dtype)) for k in m2),
              f"decay {decay}: best.safetensors holds the {side['weights']} weights")
        bj = json.load(open(os.path.join(full, "best.json")))
        check(abs(bj["best_metric"] - min(side["val_metrics"]["log_loss"], side["ema_val_metrics"]["log_loss"]))
              < 1e-12, f"decay {decay}: best_metric is the better of the two")
    check(picked == {"ema", "model"}, f"both kinds of weights were selected once: {sorted(picked)}")
    finish()


if __name__ == "__main__":
    main()
