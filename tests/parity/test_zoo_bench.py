"""bench/zoo.py's PyTorch cap and tables, fast: measure.run_once's deadline on stand-in workers
(killed in the right pass, bounds no larger than the truth, a worker done in time returns its
result), the deadline formula, the rows (torchvision's 80 builders, GFLOPs at the input size),
cvision's warm-up choice, --markdown's marks and counts, a failing row, and one real row
(squeezenet1_1 at batch 8) stopped by --torch-cap and reported as a lower bound."""
import json
import os
import subprocess
import sys
import time

from cvtest import CVISION, check, finish, tmpdir

SRC = os.environ.get("CVISION_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "bench"))
import measure  # noqa: E402
import zoo  # noqa: E402

# A stand-in worker: busy passes of the given seconds, each announced as torch_worker does, then
# its result; a long last pass is the one a deadline stops.
WORKER = """
import json, sys, time
for k, s in enumerate(map(float, sys.argv[1:])):
    t = time.monotonic()
    print(json.dumps({"pass": k, "t": t, "cpu": time.process_time()}), flush=True)
    while time.monotonic() - t < s:
        pass
print(json.dumps({"images_per_s": 1.0}))
"""


def stand_in(passes, deadline, pass_min=0.0):
    t = time.monotonic()
    o, _, foreign = measure.run_once([sys.executable, "-c", WORKER, *map(str, passes)], deadline, pass_min)
    return o, time.monotonic() - t, foreign


def main():
    o, wall, _ = stand_in([0.2, 30], 0.5)
    check(o.get("killed") and o["pass"] == 1, f"deadline 0.5 s: stopped in pass 1 {o}")
    check(wall < 5, f"the worker was killed at its deadline, not waited for ({wall:.1f} s)")
    # pass 1 began after 0.2 s and ran until the kill at 0.5 s or later; it took 30 s really
    check(0.25 < o["pass_elapsed_s"] < 30 and 0.2 <= o["passes_s"][0] < 0.5, f"times {o}")
    # one thread: its CPU time is at most its wall time (the bound may be lower on a busy machine)
    check(o["pass_cpu_s"] is not None and 0 < o["pass_cpu_s"] <= o["pass_elapsed_s"] + 0.02, f"CPU {o}")
    o, _, _ = stand_in([0.1], 0.05)
    check(o.get("killed") and o["pass"] == 0 and o["passes_s"] == [], f"stopped in the first pass {o}")
    # a pass is given pass_min seconds even past the deadline: pass 1 begins at 0.4 s, killed at 0.7
    o, _, _ = stand_in([0.4, 30], 0.5, 0.3)
    check(o.get("killed") and o["pass"] == 1 and 0.3 <= o["pass_elapsed_s"] < 30, f"pass_min 0.3 s: {o}")
    o, _, _ = stand_in([0.05, 0.05], 5)
    check(o == {"images_per_s": 1.0}, f"done before the deadline: its result {o}")

    # PyTorch at cap x cvision's pass time: one warm-up pass where that is >= --seconds, else two,
    # plus its timed passes; never under the floor
    check(zoo.torch_deadline(2, 10, 1, 1, 5) == 40, "long passes: 2 x 10 s x (1 warm-up + 1 timed)")
    check(abs(zoo.torch_deadline(2, 0.1, 1, 1, 0) - 0.2 * (2 + 5)) < 1e-9, "short passes: 2 warm-up + 5 timed")
    check(zoo.torch_deadline(2, 0.001, 1, 1, 5) == 5, "the floor")
    # cvision's warm-up: 1 where a pass is expected to take --long-pass or more
    rows = [{"model": "a", "batch": 1, "cvision": 10.0}]  # 0.1 s per image
    gflops = {"a": 1.0, "b": 4.0}
    check(zoo.cv_warmup("a", 32, gflops, rows, 3) == 1 and zoo.cv_warmup("a", 8, gflops, rows, 3) == 2,
          "warm-up from the same architecture's earlier row, scaled by batch")
    check(zoo.cv_warmup("b", 8, gflops, rows, 3) == 1 and zoo.cv_warmup("b", 4, gflops, rows, 3) == 2
          and zoo.cv_warmup("b", 32, gflops, [], 3) == 2, "warm-up from GFLOPs at the rate so far")

    # the side-by-side rows are torchvision's 80 builders; timm's DeiT (cvision-only) is left out
    archs, gflops, other = zoo.architectures(os.path.dirname(CVISION), 224)
    check(len(archs) == 80 and sorted(other) == ["deit_base_patch16_224", "deit_small_patch16_224",
                                                 "deit_tiny_patch16_224"], f"{len(archs)} rows, left out {other}")
    cat = {w["arch"]: w for w in json.loads(subprocess.run([CVISION, "models", "--json"], check=True,
                                                          capture_output=True, text=True).stdout)["weights"]}
    b7 = cat["efficientnet_b7"]  # one weight entry, at 600x600
    check(all(gflops[a] <= gflops[b] for a, b in zip(archs, archs[1:]))
          and abs(gflops["efficientnet_b7"] - b7["gflops"] * (224 / b7["transform"]["crop"]) ** 2) < 1e-9
          and b7["transform"]["crop"] == 600, "GFLOPs scaled to 224x224, cheapest first")

    d = tmpdir()
    out = os.path.join(d, "rows.jsonl")
    base = {"res": 224, "threads": 1, "foreign": 0.0, "lower_bound": False}
    with open(out, "w") as f:
        for r in ({"model": "m1", "batch": 1, "cvision": 10.0, "pytorch": 20.0, "ratio": 0.5, "cvision_cpu_ms": 100.0,
                   "pytorch_cpu_ms": 110.0, "cpu_ratio": 1.1},
                  {"model": "m2", "batch": 32, "cvision": 3.0, "pytorch": 4.0, "ratio": 0.75, "cvision_cpu_ms": 50.0,
                   "pytorch_cpu_ms": 40.0, "cpu_ratio": 0.8, "lower_bound": True},
                  {"model": "m3", "batch": 1, "cvision": 9.0, "pytorch": 3.0, "ratio": 3.0, "cvision_cpu_ms": 5.0,
                   "pytorch_cpu_ms": None, "cpu_ratio": None, "lower_bound": True}):
            f.write(json.dumps({**base, **r}) + "\n")
    md = subprocess.run([sys.executable, os.path.join(SRC, "bench", "zoo.py"), "--markdown", out],
                        capture_output=True, text=True, check=True).stdout.splitlines()
    check([line.split(" | ")[0] for line in md[2:5]] == ["| m1", "| m2", "| m3"], "rows in file order")
    check("| 0.50× |" in md[2] and "| ≤ 4.000 | ≥ 0.75× |" in md[3] and "**≥ 0.80×**" in md[3]
          and "| ? | **?** |" in md[4], f"lower bounds marked: {md[2:5]}")
    check(any("below 1.0x (wall): 1 (m1@1); lower bounds under 1.0x, undecided: m2@32" in x for x in md)
          and any("below 1.0x (CPU): 0; lower bounds under 1.0x, undecided: m2@32" in x for x in md),
          f"counts: {md[5:]}")

    # a row that fails (cvision refuses inception_v3 at 32x32) is reported and the run goes on
    zoo_py = [sys.executable, os.path.join(SRC, "bench", "zoo.py"), "--build", os.path.dirname(CVISION)]
    out = os.path.join(d, "failed.jsonl")
    p = subprocess.run([*zoo_py, "--models", "inception_v3", "--batch", "1", "--res", "32", "--tries", "1",
                        "--wait-idle", "0", "--out", out], capture_output=True, text=True)
    check(p.returncode == 0 and "inception_v3@1" in p.stdout.splitlines()[-1] and "too small" in p.stdout
          and not os.path.exists(out), f"failed row: {p.stdout.strip()[-200:]}")

    # one real row: PyTorch's squeezenet1_1 takes about a second a batch of 8 where cvision takes
    # about 50 ms, so a cap of 1x with no floor stops it in its first pass, after at least 1x
    # cvision's pass
    out = os.path.join(d, "real.jsonl")
    subprocess.run([*zoo_py, "--models", "squeezenet1_1", "--batch", "8", "--threads", "1", "--seconds", "0.2",
                    "--min-iters", "1", "--tries", "1", "--wait-idle", "0", "--torch-cap", "1",
                    "--torch-floor", "0", "--out", out], check=True, capture_output=True, text=True)
    with open(out) as f:
        r = json.loads(f.read())
    s = r.get("pytorch_stopped", [{}])[0]
    check(r["lower_bound"] and s.get("pass") == 0, f"the row is a lower bound from the first pass: {r}")
    check(abs(r["pytorch"] - 8 / s["pass_elapsed_s"]) < 1e-6 * r["pytorch"]
          and abs(r["ratio"] - r["cvision"] / r["pytorch"]) < 1e-6 * r["ratio"]
          and abs(r["pytorch_cpu_ms"] - 1e3 * s["pass_cpu_s"]) < 1e-6 * r["pytorch_cpu_ms"]
          and r["ratio"] >= 1, "row figures from the stop")
    finish()


if __name__ == "__main__":
    main()
