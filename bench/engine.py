"""Engine benchmark, side by side in one run: cvision vs PyTorch (channels_last, inference_mode,
same thread count) for resnet18 and resnet50 at batch 1 and 32, 224x224, plus the share of
oneDNN's own sgemm FLOP/s that cvision reaches.

Each measurement runs in its own process (bench/measure.py); one disturbed by other jobs on the
machine (more than --max-foreign cores of foreign CPU time) is repeated. Rounds alternate cvision
and PyTorch; medians are reported.

usage: /usr/bin/python3 bench/engine.py [--threads T] [--rounds R] [--build build]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_quiet  # noqa: E402

GMACS = {"resnet18": 1.814, "resnet50": 4.089}  # torchvision's _ops for the 224x224 models


def torch_worker(arch, batch, threads, iters):
    """One PyTorch measurement (in a child process): prints images/s as JSON."""
    import torch
    import torchvision
    torch.set_num_threads(threads)
    m = getattr(torchvision.models, arch)().eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(2):
            m(x)
        ts = []
        for _ in range(iters):
            t = time.perf_counter()
            m(x)
            ts.append(time.perf_counter() - t)
    print(json.dumps({"images_per_s": batch / statistics.median(ts)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default="build")
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="repeat a measurement when other jobs used more CPU than this (cores)")
    ap.add_argument("--tries", type=int, default=5, help="runs per measurement at most")
    ap.add_argument("--wait-idle", type=float, default=60,
                    help="seconds to wait for an idle machine before each run")
    ap.add_argument("--torch-worker", nargs=4, metavar=("ARCH", "BATCH", "THREADS", "ITERS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        arch, batch, threads, iters = a.torch_worker
        torch_worker(arch, int(batch), int(threads), int(iters))
        return
    sg, fs = [], 0.0
    for _ in range(a.rounds):
        # bench_sgemm prints a bare number: wrap it as JSON for run_quiet
        o, _, f, _ = run_quiet(["sh", "-c", f'echo "{{\\"gflops\\": $({a.build}/bench_sgemm {a.threads})}}"'],
                               a.max_foreign, a.tries, a.wait_idle)
        sg.append(o["gflops"])
        fs = max(fs, f)
    sgemm = statistics.median(sg)
    print(f"oneDNN sgemm 2048^3, {a.threads} threads: {sgemm:.1f} GFLOP/s (median of {a.rounds}; "
          f"foreign load up to {fs:.2f} cores)")
    print("foreign: the most CPU other jobs used during a row's measurements (cores, average)")
    print(f"{'model':10s} {'batch':>5s} {'cvision img/s':>14s} {'PyTorch img/s':>14s} {'ratio':>6s} "
          f"{'GFLOP/s':>8s} {'% sgemm':>8s} {'foreign':>8s}")
    for arch in ["resnet18", "resnet50"]:
        for batch in [1, 32]:
            iters = 20 if batch == 1 else 3
            cv, pt, fg = [], [], []
            for _ in range(a.rounds):
                o, _, f1, _ = run_quiet([f"{a.build}/cvision", "bench", "-m", arch, "--batch", str(batch),
                                        "--threads", str(a.threads), "--iters", str(iters), "--json"],
                                       a.max_foreign, a.tries, a.wait_idle)
                cv.append(o["images_per_s"])
                o, _, f2, _ = run_quiet([sys.executable, __file__, "--torch-worker", arch, str(batch),
                                        str(a.threads), str(iters)], a.max_foreign, a.tries, a.wait_idle)
                pt.append(o["images_per_s"])
                fg += [f1, f2]
            c, p = statistics.median(cv), statistics.median(pt)
            gf = 2 * GMACS[arch] * c
            print(f"{arch:10s} {batch:5d} {c:14.2f} {p:14.2f} {c / p:6.2f} {gf:8.1f} {100 * gf / sgemm:7.1f}% {max(fg):8.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
