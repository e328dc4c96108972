"""Model-zoo benchmark, side by side: cvision's eval-mode forward (`cvision bench`) and PyTorch's
(channels_last, inference_mode, torch.set_num_threads, the same input) for every architecture
cvision builds, at each batch size, printing images/s and the ratio.

Each measurement runs in its own process (bench/measure.py) after waiting for an idle machine;
one disturbed by other jobs (more than --max-foreign cores of foreign CPU time) is repeated, and
the row reports the worst foreign load behind it. Both sides time about --seconds of forward
passes after warm-up (at least --min-iters) and report the median of wall time (images/s) and of
the process's CPU time per batch (all its threads). On a busy machine the wall times measure the
other jobs as much as the libraries; with --threads 1 the CPU-time ratio (PyTorch's CPU ms over
cvision's) stays close to what an idle machine gives, since neither side then spins waiting for a
descheduled partner thread. PyTorch's weights are torchvision's
initialisation (trunc_normal_ replaced by a clamped normal of the same scale: the original takes
minutes on a 600M-parameter model); cvision's are its own torchvision-like initialisation.

A full run (80 models x batch 1 and 32 at 224 px) takes many hours on 2 cores with Debian's
PyTorch: choose rows with --models (comma-separated names or a regular expression), --batch and
--res, cap the run with --budget (seconds; rows not started in time are listed as skipped), and
keep the rows in --out (JSON lines) so that --resume goes on where a run stopped.

usage: /usr/bin/python3 bench/zoo.py [--build build] [--threads 2] [--batch 1 32] [--res 224]
           [--models REGEX|a,b,c] [--rounds 1] [--seconds 3] [--budget S] [--out FILE] [--resume]"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import run_quiet  # noqa: E402


def torch_worker(arch, batch, res, threads, seconds, min_iters):
    """One PyTorch measurement (in a child process): prints images/s as JSON."""
    import torch
    import torchvision

    def trunc_normal(t, mean=0.0, std=1.0, a=-2.0, b=2.0):
        with torch.no_grad():
            return t.normal_(mean, std).clamp_(a, b)

    # torch's trunc_normal_ takes minutes on the largest models; a clamped normal has the same
    # scale. The scale matters: weights too small drive activations into denormals, which cost
    # PyTorch (and any float code) 10-50x.
    torch.nn.init.trunc_normal_ = trunc_normal
    torch.set_num_threads(threads)
    kw = {"aux_logits": False, "init_weights": False} if arch in ("googlenet", "inception_v3") else {}
    m = getattr(torchvision.models, arch)(**kw).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, res, res).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        t = time.perf_counter()
        m(x)
        first = time.perf_counter() - t
        if first < seconds:  # a second warm-up pass where passes are cheap
            m(x)
        iters = max(min_iters, min(50, int(seconds / max(first, 1e-3))))
        ts, cs = [], []
        for _ in range(iters):
            t, c = time.perf_counter(), time.process_time()
            m(x)
            ts.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
    print(json.dumps({"images_per_s": batch / statistics.median(ts), "iters": iters,
                      "cpu_ms_per_batch_median": 1e3 * statistics.median(cs)}))


def architectures(build):
    """cvision's architectures, cheapest first (torchvision's GFLOPs from the weights catalog), so
    that a time budget covers as many as it can."""
    names = subprocess.run([f"{build}/cvision", "bench", "--all", "--list"], check=True,
                           capture_output=True, text=True).stdout.split()
    cat = json.loads(subprocess.run([f"{build}/cvision", "models", "--json"], check=True,
                                    capture_output=True, text=True).stdout)
    gflops = {}
    for w in cat["weights"]:
        gflops[w["arch"]] = min(gflops.get(w["arch"], 1e9), w["gflops"])
    return sorted(names, key=lambda n: gflops.get(n, 1e9))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--res", type=int, default=224)
    ap.add_argument("--models", default="", help="comma-separated names or a regular expression")
    ap.add_argument("--rounds", type=int, default=1, help="measurements per side and row (median)")
    ap.add_argument("--seconds", type=float, default=3, help="timed forward passes per measurement")
    ap.add_argument("--min-iters", type=int, default=3, help="PyTorch's timed passes at least")
    ap.add_argument("--budget", type=float, default=0, help="seconds; 0 = no limit")
    ap.add_argument("--out", help="append each row as a JSON line to this file")
    ap.add_argument("--resume", action="store_true", help="skip rows already in --out")
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="repeat a measurement when other jobs used more CPU than this (cores)")
    ap.add_argument("--tries", type=int, default=3, help="runs per measurement at most")
    ap.add_argument("--wait-idle", type=float, default=30,
                    help="seconds to wait for an idle machine before each run")
    ap.add_argument("--torch-worker", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        arch, batch, res, threads, seconds, min_iters = a.torch_worker
        torch_worker(arch, int(batch), int(res), int(threads), float(seconds), int(min_iters))
        return
    archs = architectures(a.build)
    if a.models:
        names = a.models.split(",")
        archs = ([x for x in archs if x in names] if all(n in archs for n in names)
                 else [x for x in archs if re.search(a.models, x)])
    done = set()
    if a.resume and a.out and os.path.exists(a.out):
        with open(a.out) as f:
            for line in f:
                r = json.loads(line)
                done.add((r["model"], r["batch"]))
    print(f"{len(archs)} architectures, batch {a.batch}, {a.res}x{a.res}, {a.threads} threads, "
          f"{a.rounds} round(s); foreign: the most CPU other jobs used during a row's measurements")
    print(f"{'model':22s} {'batch':>5s} {'cvision img/s':>14s} {'PyTorch img/s':>14s} {'ratio':>7s} "
          f"{'cv CPU ms':>10s} {'PT CPU ms':>10s} {'CPU ratio':>9s} {'foreign':>8s}", flush=True)
    t_start, skipped = time.monotonic(), []
    for arch in archs:
        for batch in a.batch:
            if (arch, batch) in done:
                continue
            if a.budget and time.monotonic() - t_start > a.budget:
                skipped.append(f"{arch}@{batch}")
                continue
            if arch.startswith("vit_") and a.res != 224:
                print(f"{arch:22s} {batch:5d}  (ViT runs at its position embeddings' 224 only)")
                continue
            cv, pt, fg, cvc, ptc = [], [], [], [], []
            for _ in range(a.rounds):
                o, _, f1, _ = run_quiet([f"{a.build}/cvision", "bench", "-m", arch, "--batch", str(batch),
                                         "--res", str(a.res), "--threads", str(a.threads), "--json"],
                                        a.max_foreign, a.tries, a.wait_idle)
                cv.append(o["images_per_s"])
                cvc.append(o["cpu_ms_per_batch_median"])
                o, _, f2, _ = run_quiet([sys.executable, __file__, "--torch-worker", arch, str(batch),
                                         str(a.res), str(a.threads), str(a.seconds), str(a.min_iters)],
                                        a.max_foreign, a.tries, a.wait_idle)
                pt.append(o["images_per_s"])
                ptc.append(o["cpu_ms_per_batch_median"])
                fg += [f1, f2]
            c, p = statistics.median(cv), statistics.median(pt)
            cc, pc = statistics.median(cvc), statistics.median(ptc)
            print(f"{arch:22s} {batch:5d} {c:14.2f} {p:14.3f} {c / p:6.2f}x {cc:10.1f} {pc:10.1f} "
                  f"{pc / cc:8.2f}x {max(fg):8.2f}", flush=True)
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps({"model": arch, "batch": batch, "res": a.res, "threads": a.threads,
                                        "cvision": c, "pytorch": p, "ratio": c / p,
                                        "cvision_cpu_ms": cc, "pytorch_cpu_ms": pc, "cpu_ratio": pc / cc,
                                        "foreign": max(fg)}) + "\n")
    if skipped:
        print(f"budget exhausted; not measured: {' '.join(skipped)}")


if __name__ == "__main__":
    main()
