"""Model-zoo benchmark, side by side: cvision's eval-mode forward (`cvision bench`) and PyTorch's
(channels_last, inference_mode, torch.set_num_threads, the same input) for every architecture
cvision builds, at each batch size, printing images/s and the ratio.

Each measurement runs in its own process (bench/measure.py) after waiting for an idle machine;
one disturbed by other jobs (more than --max-foreign cores of foreign CPU time) is repeated, and
the row reports the worst foreign load behind it. Both sides time about --seconds of forward
passes after warm-up (cvision at least one, PyTorch at least --min-iters) and report the median of
wall time (images/s) and of the process's CPU time per batch (all its threads). On a busy machine
the wall times measure the other jobs as much as the libraries; with --threads 1 the CPU-time
ratio (PyTorch's CPU ms over cvision's) stays close to what an idle machine gives, since neither
side then spins waiting for a descheduled partner thread. PyTorch's weights are torchvision's
initialisation (trunc_normal_ replaced by a clamped normal of the same scale: the original takes
minutes on a 600M-parameter model); cvision's are its own torchvision-like initialisation.

Both sides' warm-up and timed passes are bounded for the big models: cvision gets one warm-up pass
(not two) where its pass is expected to take --long-pass seconds or more, and with --torch-cap K
PyTorch's passes may take K x (cvision's time per pass) x (the passes PyTorch would make at that
speed), at least --torch-floor seconds in all, and each pass at least K x cvision's time before it
is stopped. A stopped row is a lower bound (">=" in the table, "lower_bound" in --out): PyTorch's
unfinished pass had run that long already, so its time per pass is longer (when that is the first
pass, it includes PyTorch's one-time costs; measured rows give its first pass in
"pytorch_first_pass_s"). Choose rows with --models (comma-separated names or a regular
expression), --batch and --res, cap the run with --budget (seconds; rows not started in time are
listed as skipped), and keep the rows in --out (JSON lines) so that --resume goes on where a run
stopped; --markdown FILE prints such a file as docs/performance.md's table.

usage: /usr/bin/python3 bench/zoo.py [--build build] [--threads 2] [--batch 1 32] [--res 224]
           [--models REGEX|a,b,c] [--rounds 1] [--seconds 3] [--min-iters 3] [--long-pass S]
           [--torch-cap K] [--torch-floor 5] [--budget S] [--out FILE] [--resume]
       /usr/bin/python3 bench/zoo.py --markdown FILE.jsonl"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import Failed, run_quiet  # noqa: E402


def torch_worker(arch, batch, res, threads, seconds, min_iters, deadline):
    """One PyTorch measurement (in a child process): prints images/s as JSON. With deadline > 0
    (seconds from the first pass's start) it also prints a line as each pass starts (for
    measure.run_once, which kills it at the deadline), skips the second warm-up pass and ends its
    timed passes early where they would not fit before the deadline."""
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
    starts = []  # each pass's start, time.monotonic()

    def one_pass():
        starts.append(time.monotonic())
        if deadline > 0:  # the stamp precedes the pass by the print (microseconds)
            print(json.dumps({"pass": len(starts) - 1, "t": starts[-1], "cpu": time.process_time()}),
                  flush=True)
        t, c = time.monotonic(), time.process_time()
        m(x)
        return time.monotonic() - t, time.process_time() - c

    def fits(s):  # another pass of s seconds ends before the deadline
        return deadline <= 0 or time.monotonic() + s < starts[0] + deadline

    with torch.inference_mode():
        first, _ = one_pass()
        if first < seconds and fits(2 * first):  # a second warm-up pass where passes are cheap
            one_pass()
        warmup = len(starts)
        iters = max(min_iters, min(50, int(seconds / max(first, 1e-3))))
        ts, cs = [], []
        while len(ts) < iters and (not ts or fits(statistics.median(ts))):
            t, c = one_pass()
            ts.append(t)
            cs.append(c)
    print(json.dumps({"images_per_s": batch / statistics.median(ts), "warmup": warmup,
                      "iters": len(ts), "first_pass_s": first,
                      "cpu_ms_per_batch_median": 1e3 * statistics.median(cs)}))


def torch_deadline(cap, cv_s, seconds, min_iters, floor):
    """Seconds PyTorch's passes may take: `cap` times cvision's pass time (cv_s) for each pass
    PyTorch would make were it `cap` times slower than cvision (its warm-up as torch_worker
    decides it, and its timed passes), at least `floor`."""
    p = cap * cv_s
    warm = 1 if p >= seconds else 2
    iters = max(min_iters, min(50, int(seconds / max(p, 1e-3))))
    return max(floor, p * (warm + iters))


def architectures(build, res):
    """cvision's architectures that torchvision builds (those in the weights catalog: not timm's
    DeiT), cheapest first (torchvision's GFLOPs from the catalog, scaled to res x res) so that a
    time budget covers as many as it can; those GFLOPs; and the architectures left out."""
    names = subprocess.run([f"{build}/cvision", "bench", "--all", "--list"], check=True,
                           capture_output=True, text=True).stdout.split()
    cat = json.loads(subprocess.run([f"{build}/cvision", "models", "--json"], check=True,
                                    capture_output=True, text=True).stdout)
    gflops = {}
    for w in cat["weights"]:
        g = w["gflops"] * (res / w["transform"]["crop"]) ** 2
        gflops[w["arch"]] = min(gflops.get(w["arch"], g), g)
    return (sorted((n for n in names if n in gflops), key=gflops.get), gflops,
            [n for n in names if n not in gflops])


def cv_warmup(arch, batch, gflops, rows, long_pass):
    """cvision's warm-up passes for a row: 1 where its pass is expected to take long_pass seconds
    or more (the first pass plans; a second only steadies caches), else 2. The expectation scales
    an earlier row of the same architecture by batch size, else the architecture's GFLOPs by the
    median rate (GFLOPs per second) of the rows so far; 2 when there is neither."""
    same = [r for r in rows if r["model"] == arch]
    if same:
        est = batch / same[-1]["cvision"]  # images/s -> seconds per pass of `batch`
    else:
        rates = [gflops[r["model"]] * r["cvision"] for r in rows if r["model"] in gflops]
        if not rates or arch not in gflops:
            return 2
        est = gflops[arch] * batch / statistics.median(rates)
    return 1 if est >= long_pass else 2


def fmt_row(r, md):
    """A row's figures as strings; a lower bound's PyTorch figures get <= / >= marks."""
    lb = r.get("lower_bound")
    le, ge, x = ("≤ ", "≥ ", "×") if md else ("<=", ">=", "x")
    ge = ge if lb else ""
    pc = "?" if r["pytorch_cpu_ms"] is None else f"{ge}{r['pytorch_cpu_ms']:.1f}"
    cr = "?" if r["cpu_ratio"] is None else f"{ge}{r['cpu_ratio']:.2f}{x}"
    return [f"{r['cvision']:.2f}", (le if lb else "") + f"{r['pytorch']:.3f}", f"{ge}{r['ratio']:.2f}{x}",
            f"{r['cvision_cpu_ms']:.1f}", pc, cr, f"{r['foreign']:.2f}"]


def markdown(path):
    """Prints the rows of a --out file (in run order) as docs/performance.md's table, and how
    many are below 1.0x."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print("| model | batch | input | cvision img/s | PyTorch img/s | ratio (wall) | "
          "cvision CPU ms/batch | PyTorch CPU ms/batch | **ratio (CPU)** | foreign load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = fmt_row(r, True)
        c[5] = f"**{c[5]}**"
        print(f"| {r['model']} | {r['batch']} | {r['res']} | " + " | ".join(c) + " |")
    print()
    for key, what in (("ratio", "wall"), ("cpu_ratio", "CPU")):
        low = [r for r in rows if r[key] is not None and r[key] < 1]
        below = [f"{r['model']}@{r['batch']}" for r in low if not r.get("lower_bound")]
        open_ = [f"{r['model']}@{r['batch']}" for r in low if r.get("lower_bound")]
        print(f"{len(rows)} rows; below 1.0x ({what}): {len(below)}" + (f" ({', '.join(below)})" if below else "")
              + (f"; lower bounds under 1.0x, undecided: {', '.join(open_)}" if open_ else ""))
    lbs = sum(bool(r.get("lower_bound")) for r in rows)
    if lbs:
        print(f"{lbs} rows are lower bounds (≥): PyTorch was stopped by --torch-cap.")


def measure_row(a, arch, batch, warm):
    """One row: a.rounds measurements of each side, medians; raises Failed."""
    cv, pt, fg, cvc, ptc, cvs, killed, first = [], [], [], [], [], [], [], []
    for _ in range(a.rounds):
        o, _, f1, _ = run_quiet([f"{a.build}/cvision", "bench", "-m", arch, "--batch", str(batch),
                                 "--res", str(a.res), "--threads", str(a.threads),
                                 "--warmup", str(warm), "--seconds", str(a.seconds), "--json"],
                                a.max_foreign, a.tries, a.wait_idle)
        cv.append(o["images_per_s"])
        cvc.append(o["cpu_ms_per_batch_median"])
        cvs.append(o["ms_per_batch_median"] / 1e3)
        deadline = (torch_deadline(a.torch_cap, cvs[-1], a.seconds, a.min_iters, a.torch_floor)
                    if a.torch_cap else 0)
        o, _, f2, _ = run_quiet([sys.executable, __file__, "--torch-worker", arch, str(batch),
                                 str(a.res), str(a.threads), str(a.seconds), str(a.min_iters),
                                 str(deadline)],
                                a.max_foreign, a.tries, a.wait_idle, deadline or None,
                                a.torch_cap * cvs[-1])
        if o.get("killed"):
            # pass o["pass"] was still running after these times (at least torch_cap times
            # cvision's pass): PyTorch's time per pass is at least that (in the first pass,
            # with its one-time costs)
            killed.append(o)
            pt.append(batch / max(o["pass_elapsed_s"], 1e-9))
            ptc.append(None if o["pass_cpu_s"] is None else 1e3 * o["pass_cpu_s"])
        else:
            pt.append(o["images_per_s"])
            ptc.append(o["cpu_ms_per_batch_median"])
            first.append(o["first_pass_s"])
        fg += [f1, f2]
    # with some rounds lower bounds, the median of the bounds and measurements bounds the
    # median of the true figures (each term is at most its true value)
    c, p = statistics.median(cv), statistics.median(pt)
    cc = statistics.median(cvc)
    pc = None if None in ptc else statistics.median(ptc)
    r = {"model": arch, "batch": batch, "res": a.res, "threads": a.threads,
         "cvision": c, "pytorch": p, "ratio": c / p, "cvision_cpu_ms": cc,
         "pytorch_cpu_ms": pc, "cpu_ratio": None if pc is None else pc / cc, "foreign": max(fg),
         "cvision_warmup": warm, "lower_bound": bool(killed)}
    if first:
        r["pytorch_first_pass_s"] = statistics.median(first)
    if killed:
        r["pytorch_stopped"] = [{k: o[k] for k in ("pass", "pass_elapsed_s", "pass_cpu_s", "passes_s")}
                                for o in killed]
    return r


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
    ap.add_argument("--long-pass", type=float, help="seconds; cvision gets one warm-up pass (not "
                    "two) where a pass is expected to take this long (default: --seconds)")
    ap.add_argument("--torch-cap", type=float, default=0,
                    help="stop PyTorch beyond this many times cvision's pass time (0 = off); "
                         "the row is then a lower bound")
    ap.add_argument("--torch-floor", type=float, default=5,
                    help="seconds PyTorch's passes may take at least under --torch-cap")
    ap.add_argument("--budget", type=float, default=0, help="seconds; 0 = no limit")
    ap.add_argument("--out", help="append each row as a JSON line to this file")
    ap.add_argument("--resume", action="store_true", help="skip rows already in --out")
    ap.add_argument("--markdown", metavar="FILE.jsonl",
                    help="only print the rows of an --out file as a markdown table")
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="repeat a measurement when other jobs used more CPU than this (cores)")
    ap.add_argument("--tries", type=int, default=3, help="runs per measurement at most")
    ap.add_argument("--wait-idle", type=float, default=30,
                    help="seconds to wait for an idle machine before each run (0: do not wait)")
    ap.add_argument("--torch-worker", nargs=7, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        arch, batch, res, threads, seconds, min_iters, deadline = a.torch_worker
        torch_worker(arch, int(batch), int(res), int(threads), float(seconds), int(min_iters),
                     float(deadline))
        return
    if a.markdown:
        markdown(a.markdown)
        return
    long_pass = a.seconds if a.long_pass is None else a.long_pass
    archs, gflops, other = architectures(a.build, a.res)
    if a.models:
        names = a.models.split(",")
        archs = ([x for x in archs if x in names] if all(n in archs for n in names)
                 else [x for x in archs if re.search(a.models, x)])
    rows = []
    if a.resume and a.out and os.path.exists(a.out):
        with open(a.out) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    done = {(r["model"], r["batch"]) for r in rows}
    print(f"{len(archs)} architectures, batch {a.batch}, {a.res}x{a.res}, {a.threads} threads, "
          f"{a.rounds} round(s); foreign: the most CPU other jobs used during a row's measurements"
          + (f"; PyTorch stopped beyond {a.torch_cap:g}x cvision's time (>=: lower bound)"
             if a.torch_cap else "") + (f"; not in torchvision: {', '.join(other)}" if other else ""))
    print(f"{'model':22s} {'batch':>5s} {'cvision img/s':>14s} {'PyTorch img/s':>14s} {'ratio':>9s} "
          f"{'cv CPU ms':>10s} {'PT CPU ms':>12s} {'CPU ratio':>10s} {'foreign':>8s}", flush=True)
    t_start, skipped, failed = time.monotonic(), [], []
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
            warm = cv_warmup(arch, batch, gflops, rows, long_pass)
            try:
                r = measure_row(a, arch, batch, warm)
            except Failed as e:  # reported, and the run goes on (a row too big for memory, ...)
                print(f"{arch:22s} {batch:5d}  failed: {str(e)[-300:]}", flush=True)
                failed.append(f"{arch}@{batch}")
                continue
            rows.append(r)
            cells = fmt_row(r, False)
            print(f"{arch:22s} {batch:5d} {cells[0]:>14s} {cells[1]:>14s} {cells[2]:>9s} {cells[3]:>10s} "
                  f"{cells[4]:>12s} {cells[5]:>10s} {cells[6]:>8s}", flush=True)
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
    if skipped:
        print(f"budget exhausted; not measured: {' '.join(skipped)}")
    if failed:
        print(f"failed (not in --out, so --resume tries them again): {' '.join(failed)}")


if __name__ == "__main__":
    main()
