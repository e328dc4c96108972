"""Training benchmark, side by side in one run: cvision vs PyTorch, same model, batch, thread count
and step: training-mode forward, cross-entropy loss, backward, SGD with momentum 0.9. PyTorch uses
channels_last. Configurations: resnet18 at 224x224 batch 32 (1000 classes) and at 28x28 batch 128
(FashionMNIST-sized input with 3 channels, 10 classes).

Each measurement runs in its own process; its peak memory is that process's ru_maxrss (os.wait4),
the same for both sides. A measurement disturbed by other jobs on the machine (more than
--max-foreign cores of foreign CPU time, bench/measure.py) is repeated. Rounds alternate cvision
and PyTorch; medians are reported.

usage: /usr/bin/python3 bench/train.py [--threads T] [--rounds R] [--build build] [--quick]"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_quiet  # noqa: E402

CONFIGS = [  # arch, res, batch, classes, timed steps
    ("resnet18", 224, 32, 1000, 3),
    ("resnet18", 28, 128, 10, 10),
]


def torch_worker(arch, res, batch, classes, threads, iters):
    """One PyTorch measurement (runs in a child process): prints images/s as JSON."""
    import torch
    import torchvision
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = getattr(torchvision.models, arch)(num_classes=classes).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    crit = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, res, res).to(memory_format=torch.channels_last)
    y = torch.arange(batch) * 37 % classes

    def step():
        opt.zero_grad()
        loss = crit(m(x), y)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t)
    print(json.dumps({"images_per_s": batch / statistics.median(ts)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="one round, fewer steps (a smoke run)")
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="repeat a measurement when other jobs used more CPU than this (cores)")
    ap.add_argument("--tries", type=int, default=5, help="runs per measurement at most")
    ap.add_argument("--wait-idle", type=float, default=60,
                    help="seconds to wait for an idle machine before each run")
    ap.add_argument("--torch-worker", nargs=5, type=int, metavar=("RES", "BATCH", "CLASSES", "THREADS", "ITERS"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--arch", default="resnet18", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        torch_worker(a.arch, *a.torch_worker)
        return
    rounds = 1 if a.quick else a.rounds
    print(f"training step (forward, cross-entropy, backward, SGD momentum), {a.threads} threads, "
          f"median of {rounds} rounds")
    print("foreign: the most CPU other jobs used during a row's measurements (cores, average)")
    print(f"{'model':9s} {'input':>7s} {'batch':>5s} {'cvision img/s':>14s} {'PyTorch img/s':>14s} {'ratio':>6s} "
          f"{'cvision MB':>11s} {'PyTorch MB':>11s} {'mem ratio':>9s} {'foreign':>8s}")
    for arch, res, batch, classes, iters in CONFIGS:
        if a.quick:
            iters = 2
        cv, pt, cvm, ptm, fg = [], [], [], [], []
        for _ in range(rounds):
            o, mb, f1, _ = run_quiet([f"{a.build}/cvision", "bench", "-m", arch, "--train", "--batch",
                                     str(batch), "--res", str(res), "--classes", str(classes), "--threads",
                                     str(a.threads), "--iters", str(iters), "--json"], a.max_foreign, a.tries, a.wait_idle)
            cv.append(o["images_per_s"])
            cvm.append(mb)
            o, mb, f2, _ = run_quiet([sys.executable, __file__, "--arch", arch, "--torch-worker", str(res),
                                     str(batch), str(classes), str(a.threads), str(iters)], a.max_foreign, a.tries, a.wait_idle)
            pt.append(o["images_per_s"])
            ptm.append(mb)
            fg += [f1, f2]
        c, p = statistics.median(cv), statistics.median(pt)
        cm, pm = statistics.median(cvm), statistics.median(ptm)
        print(f"{arch:9s} {f'{res}x{res}':>7s} {batch:5d} {c:14.2f} {p:14.2f} {c / p:6.2f} {cm:11.0f} {pm:11.0f} "
              f"{cm / pm:9.2f} {max(fg):8.2f}", flush=True)


if __name__ == "__main__":
    main()
