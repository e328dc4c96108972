"""Engine benchmark, side by side in one run: cvision vs PyTorch (channels_last, inference_mode,
same thread count) for resnet18 and resnet50 at batch 1 and 32, 224x224, plus the share of
oneDNN's own sgemm FLOP/s that cvision's ResNet-18 reaches.

usage: /usr/bin/python3 bench/engine.py [--threads T] [--rounds R] [--build build]
Each configuration is measured R times alternating cvision and PyTorch; medians are reported."""
import argparse
import json
import statistics
import subprocess
import time

import torch
import torchvision

GMACS = {"resnet18": 1.814, "resnet50": 4.089}  # torchvision's _ops for the 224x224 models


def torch_ips(arch, batch, threads, iters):
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
    return batch / statistics.median(ts)


def cvision_ips(build, arch, batch, threads, iters):
    out = subprocess.run([f"{build}/cvision", "bench", "-m", arch, "--batch", str(batch), "--threads",
                          str(threads), "--iters", str(iters), "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["images_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    sgemm = float(subprocess.run([f"{a.build}/bench_sgemm", str(a.threads)], capture_output=True,
                                 text=True, check=True).stdout)
    print(f"oneDNN sgemm 2048^3, {a.threads} threads: {sgemm:.1f} GFLOP/s")
    print(f"{'model':10s} {'batch':>5s} {'cvision img/s':>14s} {'PyTorch img/s':>14s} {'ratio':>6s} {'GFLOP/s':>8s} {'% sgemm':>8s}")
    for arch in ["resnet18", "resnet50"]:
        for batch in [1, 32]:
            iters = 20 if batch == 1 else 3
            cv, pt = [], []
            for _ in range(a.rounds):
                cv.append(cvision_ips(a.build, arch, batch, a.threads, iters))
                pt.append(torch_ips(arch, batch, a.threads, iters))
            c, p = statistics.median(cv), statistics.median(pt)
            gf = 2 * GMACS[arch] * c
            print(f"{arch:10s} {batch:5d} {c:14.2f} {p:14.2f} {c / p:6.2f} {gf:8.1f} {100 * gf / sgemm:7.1f}%", flush=True)


if __name__ == "__main__":
    main()
