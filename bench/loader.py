"""Benchmark: cvision's data loader against torchvision's DataLoader with PIL, same work.

    /usr/bin/python3 bench/loader.py [--cvision build/cvision] [--images 400] [--workers 1 2]
                                     [--batch 32] [--rounds 3] [--cache /tmp/cvision-bench-loader]
                                     [--max-foreign 0.1] [--tries 3] [--wait-idle 30]

Generates once (cached) a folder of JPEG "photographs" -- smooth gradients, blobs, texture and
noise, 500x375, 375x500 and 640x480, quality 90, written by PIL -- in ImageFolder layout. Then
for each worker count W measures images/s of decode + RandomResizedCrop(224) + horizontal flip +
to-tensor + Normalize(ImageNet) into float32 NCHW batches:
  * cvision: `cvision data bench folder:DIR --transform rrc(224),hflip,normalize(imagenet)
    --workers W --batch B --json`, one pass over the folder per run (process start included);
  * torchvision: DataLoader(ImageFolder(DIR, Compose([RandomResizedCrop(224),
    RandomHorizontalFlip(), ToTensor(), Normalize(...)])), batch_size=B, num_workers=W,
    shuffle=True, persistent_workers=True), one epoch per run after a warm-up epoch (so worker
    start-up is not counted against it).
Each measurement runs in its own process (bench/measure.py), cvision and torchvision alternating
for --rounds rounds; one disturbed by other jobs (more than --max-foreign cores of foreign CPU) is
repeated up to --tries times. Prints medians, the ratio, images/s per worker and the worst foreign
load behind each row. The files are read once before timing (page cache warm for both). Not part
of the test suite.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_quiet  # noqa: E402


def photo(rng, w, h):
    """A natural-looking synthetic photograph: sky-like gradient, soft blobs, 1/f texture, noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (y / h)[..., None]
    img = top * (1 - t) + bottom * t
    for _ in range(rng.integers(3, 8)):  # soft objects
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 180)
        a = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - a) + rng.uniform(0, 255, 3) * a
    # texture: noise low-passed at several scales (1/f-like), then fine sensor noise
    for s in (64, 16, 4):
        small = rng.normal(0, 1, (h // s + 2, w // s + 2, 1)).astype(np.float32)
        big = np.kron(small, np.ones((s, s, 1), np.float32))[:h, :w]
        img += big * (s ** 0.5) * 2.5
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_folder(root, n, seed=0):
    from PIL import Image
    stamp = os.path.join(root, f".done-{n}")
    if os.path.exists(stamp):
        return
    rng = np.random.default_rng(seed)
    sizes = [(500, 375), (375, 500), (640, 480)]
    for i in range(n):
        d = os.path.join(root, f"class{i % 4}")
        os.makedirs(d, exist_ok=True)
        w, h = sizes[rng.integers(len(sizes))]
        Image.fromarray(photo(rng, w, h)).save(os.path.join(d, f"img{i:04d}.jpg"), quality=90)
    open(stamp, "w").close()


def warm(root):
    for dp, _, fs in os.walk(root):
        for f in fs:
            with open(os.path.join(dp, f), "rb") as fh:
                fh.read()


def torch_worker(root, workers, batch):
    """One torchvision measurement (in a child process): one epoch after a warm-up epoch."""
    import torch
    from torchvision import datasets, transforms
    torch.set_num_threads(1)
    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = datasets.ImageFolder(root, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=True,
                                     persistent_workers=workers > 0)
    for _ in dl:  # warm-up epoch: starts the workers
        pass
    t0, n = time.perf_counter(), 0
    for x, _ in dl:
        n += x.shape[0]
    print(json.dumps({"images_per_s": n / (time.perf_counter() - t0)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cvision", default="build/cvision")
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/cvision-bench-loader")
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="repeat a measurement when other jobs used more CPU than this (cores)")
    ap.add_argument("--tries", type=int, default=3, help="runs per measurement at most")
    ap.add_argument("--wait-idle", type=float, default=30,
                    help="seconds to wait for an idle machine before each run")
    ap.add_argument("--torch-worker", nargs=3, metavar=("ROOT", "WORKERS", "BATCH"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        root, workers, batch = a.torch_worker
        torch_worker(root, int(workers), int(batch))
        return
    root = os.path.join(a.cache, f"photos{a.images}")
    make_folder(root, a.images)
    warm(root)
    print(f"{a.images} JPEG photographs (500x375 / 375x500 / 640x480, q90) in {root}")
    print("decode + RandomResizedCrop(224) + flip + normalize, float32 NCHW batches of "
          f"{a.batch}; median of {a.rounds} rounds; {os.cpu_count()} CPUs")
    print("foreign: the most CPU other jobs used during a row's measurements (cores, average)\n")
    print(f"{'workers':>7} {'cvision img/s':>14} {'torchvision img/s':>18} {'ratio':>6} "
          f"{'cvision /worker':>16} {'torchvision /worker':>20} {'foreign':>8}")
    for w in a.workers:
        cv, tv, fg = [], [], []
        for r in range(a.rounds):
            o, _, f1, _ = run_quiet([a.cvision, "data", "bench", f"folder:{root}", "--transform",
                                     "rrc(224),hflip,normalize(imagenet)", "--workers", str(w),
                                     "--batch", str(a.batch), "--seed", str(r), "--json"],
                                    a.max_foreign, a.tries, a.wait_idle)
            cv.append(o["images_per_s"])
            o, _, f2, _ = run_quiet([sys.executable, os.path.abspath(__file__), "--torch-worker",
                                     root, str(w), str(a.batch)], a.max_foreign, a.tries,
                                    a.wait_idle)
            tv.append(o["images_per_s"])
            fg += [f1, f2]
        c, t = statistics.median(cv), statistics.median(tv)
        print(f"{w:>7} {c:>14.1f} {t:>18.1f} {c / t:>5.2f}x {c / w:>16.1f} {t / w:>20.1f} "
              f"{max(fg):>8.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
