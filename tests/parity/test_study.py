"""cvision study: a tiny study (2 models at 16x16, a 3-class accuracy task and an imbalanced binary
ROC AUC task from random npy data, a 2-point grid, 2 epochs of 3 steps) gives its final table;

* the selection is the run with the best validation score per (model, dataset) in the database,
  and the table's test value equals scikit-learn's metric on `cvision eval`'s predictions of that
  run's best checkpoint (to 1e-9); every run of a dataset uses the one shared 80/20 split, which
  is class-balanced (per class, val = 20% +- 1);
* a study SIGKILLed after its first finished run and restarted gives the same table, byte for
  byte, without redoing finished runs;
* two processes started at once on one DIR, and `mpirun -np 2`, give the same table, and no run
  is claimed twice;
* --export-jobs writes one --only line per run; running them and then --report gives the table;
* bad options fail with one line naming what is wrong (a changed grid or model list against an
  existing DIR names the option)."""
import csv
import json
import os
import signal
import sqlite3
import subprocess
import time

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from cvtest import CVISION, check, finish, run, tmpdir

T = tmpdir()
rng = np.random.RandomState(7)


def make(name, n, k, pos=None):
    if pos is None:
        y = np.arange(n) % k
    else:
        y = (rng.rand(n) < pos).astype(np.int64)
        y[:2] = [0, 1]
    x = (rng.rand(n, 16, 16) * 120 + y[:, None, None] * (120 / max(k - 1, 1))).astype(np.uint8)
    np.save(f"{T}/{name}X.npy", x)
    np.save(f"{T}/{name}Y.npy", y.astype(np.int64))
    return f"npy:{T}/{name}X.npy,{T}/{name}Y.npy"


A_TR, A_TE = make("atr", 60, 3), make("ate", 30, 3)
B_TR, B_TE = make("btr", 60, 2, 0.25), make("bte", 40, 2, 0.25)
MODELS = ["mobilenet_v3_small", "shufflenet_v2_x0_5"]
ARGS = ["--models", ",".join(MODELS), "--weights", "none",
        "--data", "a=" + A_TR, "--test", "a=" + A_TE,
        "--data", "b=" + B_TR, "--test", "b=" + B_TE, "--metric", "b=roc_auc",
        "--grid", "lr=0.05,0.005;opt=sgd;sched=cosine", "--epochs", "2", "--max-steps", "3",
        "--batch", "8", "--threads", "1", "--workers", "1", "--quiet"]
NRUNS = 2 * 2 * 2


def study(out, *extra, check_rc=True):
    return run("study", *ARGS, "--out", out, *extra, check=check_rc)


def table(out):
    with open(f"{out}/table.csv") as f:
        return f.read()


def db_rows(out):
    con = sqlite3.connect(f"{out}/study.sqlite")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY id")]
    con.close()
    return rows


# ---- one process: the reference table ----
ref_dir = f"{T}/ref"
p = study(ref_dir)
ref = table(ref_dir)
rows = db_rows(ref_dir)
check(len(rows) == NRUNS and all(r["status"] == "done" for r in rows),
      f"{NRUNS} runs, all done: {[r['status'] for r in rows]}")
check(p.stdout.count("(accuracy)") == 1 and p.stdout.count("(roc_auc)") == 1,
      "the table is printed once per dataset")
tab = list(csv.DictReader(open(f"{ref_dir}/table.csv")))
check(len(tab) == 4, "table: one row per (model, dataset)")
for t in tab:
    cand = [r for r in rows if r["dataset"] == t["dataset"] and r["model"] == t["model"]]
    best = max(cand, key=lambda r: r["val_score"])  # max keeps the first of ties, as the study
    check(int(t["run_id"]) == best["id"] and float(t["value"]) == best["test_value"],
          f"{t['dataset']}/{t['model']}: selected run {t['run_id']} is the best on validation")
    # the test value against scikit-learn on cvision eval's predictions of the selected checkpoint
    run_dir = [d for d in os.listdir(f"{ref_dir}/runs") if d.startswith(f"{best['id']:04d}-")][0]
    ev = f"{T}/eval{best['id']}"
    run("eval", "-m", t["model"], "-w", f"{ref_dir}/runs/{run_dir}/best.safetensors",
        "--data", A_TE if t["dataset"] == "a" else B_TE, "--out", ev, "--threads", "1")
    pred = np.genfromtxt(f"{ev}/predictions.csv", delimiter=",", names=True)
    scores = np.stack([pred[f"score_{k}"] for k in range(3 if t["dataset"] == "a" else 2)], 1)
    want = (accuracy_score(pred["label"], scores.argmax(1)) if t["dataset"] == "a"
            else roc_auc_score(pred["label"], scores[:, 1]))
    check(abs(float(t["value"]) - want) < 1e-9,
          f"{t['dataset']}/{t['model']}: test {t['metric']} {t['value']} = sklearn {want:.6f}")
# one split per dataset, class-balanced 80/20, and no run made its own
for name, spec_y in (("a", f"{T}/atrY.npy"), ("b", f"{T}/btrY.npy")):
    sp = json.load(open(f"{ref_dir}/splits/{name}.json"))
    y = np.load(spec_y)
    val = np.array(sp["parts"][1], dtype=int)
    ok = all(abs((y[val] == c).sum() - 0.2 * (y == c).sum()) < 1 for c in np.unique(y))
    check(ok and len(sp["parts"][0]) + len(val) == len(y), f"split {name}: class-balanced 80/20")
check(not any(os.path.exists(f"{ref_dir}/runs/{d}/split.json") for d in os.listdir(f"{ref_dir}/runs")),
      "runs share the study's split files")
# a re-run finds everything done and changes nothing
before = db_rows(ref_dir)
study(ref_dir)
check(table(ref_dir) == ref and db_rows(ref_dir) == before, "a finished study re-run redoes nothing")

# ---- killed after the first finished run, then restarted ----
kdir = f"{T}/killed"
proc = subprocess.Popen([CVISION, "study", *ARGS, "--out", kdir], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
done_before = []
deadline = time.time() + 60
while time.time() < deadline and proc.poll() is None:
    try:
        done_before = [r for r in db_rows(kdir) if r["status"] == "done"]
    except sqlite3.Error:
        done_before = []
    if done_before:
        break
    time.sleep(0.05)
proc.send_signal(signal.SIGKILL)
proc.wait()
mid = db_rows(kdir)
check(0 < len(done_before) < NRUNS, f"killed after {len(done_before)} finished run(s)")
study(kdir)
after = db_rows(kdir)
check(table(kdir) == ref, "killed + restarted study: the same table as an uninterrupted one")
same = all(a["attempts"] == 1 and a["finished"] == b["finished"]
           for a, b in zip(after, mid) if b["status"] == "done")
check(same, "runs finished before the kill were not redone")
check(any(b["status"] == "running" for b in mid) <= any(a["attempts"] == 2 for a in after),
      "the run the killed process held was reclaimed")

# ---- two processes at once ----
tdir = f"{T}/two"
procs = [subprocess.Popen([CVISION, "study", *ARGS, "--out", tdir], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) for _ in range(2)]
outs = [q.communicate(timeout=120) for q in procs]
check(all(q.returncode == 0 for q in procs), f"two processes succeed: {[o[1][-300:] for o in outs]}")
rows2 = db_rows(tdir)
check(table(tdir) == ref, "two processes: the same table as one")
check(all(r["attempts"] == 1 for r in rows2), "two processes: no run claimed twice")
print("two processes: runs per claimer",
      {c: sum(r["claimed_by"] == c for r in rows2) for c in {r["claimed_by"] for r in rows2}})

# ---- mpirun -np 2 ----
mdir = f"{T}/mpi"
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
m = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", CVISION, "study", *ARGS, "--out", mdir],
                   capture_output=True, text=True, env=env, timeout=180)
check(m.returncode == 0, f"mpirun -np 2 succeeds: {m.stderr[-300:]}")
check(os.path.exists(f"{mdir}/table.csv") and table(mdir) == ref, "mpirun -np 2: the same table as one process")
check(m.stdout.count("(accuracy)") == 1, "mpirun: only rank 0 prints the table")
check(all(r["attempts"] == 1 for r in db_rows(mdir)), "mpirun: no run claimed twice")

# ---- --export-jobs / --only / --report ----
edir = f"{T}/jobs"
jobs = f"{T}/jobs.txt"
study(edir, "--export-jobs", jobs)
lines = open(jobs).read().splitlines()
check(len(lines) == NRUNS and all(l.endswith(f"--only {i + 1}") for i, l in enumerate(lines)),
      f"--export-jobs: one line per run ({len(lines)})")
check(all(r["status"] == "pending" for r in db_rows(edir)), "--export-jobs runs nothing")
for l in reversed(lines):  # any order
    subprocess.run(["bash", "-c", l], check=True, capture_output=True)
check(all(r["status"] == "done" for r in db_rows(edir)) and not os.path.exists(f"{edir}/table.csv"),
      "--only runs exactly its run (no table)")
r = run("study", "--out", edir, "--report")
check(table(edir) == ref and "(roc_auc)" in r.stdout, "--report after the jobs: the same table")
r = run("study", "--out", edir, "--report", "--json")
check(json.loads(r.stdout) == json.load(open(f"{edir}/table.json")) and len(json.loads(r.stdout)) == 4,
      "--report --json prints table.json")
study(edir, "--export-jobs", jobs)
check(open(jobs).read() == "", "--export-jobs on a finished study: no lines")


# ---- macro_f1_tuned: per-class thresholds tuned on validation, applied on test ----
def make_ml(name, n, k):
    y = (rng.rand(n, k) < 0.4).astype(np.int64)
    y[:k, :] = np.eye(k, dtype=np.int64)  # every class present
    x = (rng.rand(n, 16, 16) * 100 + y[:, :1, None] * 60 + y[:, 1:2, None] * 30).astype(np.uint8)
    np.save(f"{T}/{name}X.npy", x)
    np.save(f"{T}/{name}Y.npy", y)
    return f"npy:{T}/{name}X.npy,{T}/{name}Y.npy"


C_TR, C_TE = make_ml("ctr", 60, 3), make_ml("cte", 40, 3)
cdir = f"{T}/tuned"
run("study", "--models", "mobilenet_v3_small", "--weights", "none", "--data", "c=" + C_TR,
    "--test", "c=" + C_TE, "--metric", "c=macro_f1_tuned", "--grid", "lr=0.05", "--epochs", "2",
    "--max-steps", "3", "--batch", "8", "--threads", "1", "--workers", "1", "--quiet", "--out", cdir,
    "--train-transform", "c=grayscale(3),hflip,to_tensor,normalize(imagenet)")
ct = list(csv.DictReader(open(f"{cdir}/table.csv")))[0]
ckpt = f"{cdir}/runs/" + os.listdir(f"{cdir}/runs")[0] + "/best.safetensors"
side = json.load(open(ckpt.replace(".safetensors", ".json")))
check(side.get("train_transform") == "grayscale(3),hflip,to_tensor,normalize(imagenet)",
      f"--train-transform reaches the runs: {side.get('train_transform')}")
check(side.get("eval_transform") == "grayscale(3),to_tensor,normalize(imagenet)",
      f"without --eval-transform, evaluation is the training pipeline without hflip: {side.get('eval_transform')}")


def ml_preds(spec, tag):
    run("eval", "-m", "mobilenet_v3_small", "-w", ckpt, "--data", spec, "--out", f"{T}/{tag}",
        "--threads", "1")
    rows = list(csv.DictReader(open(f"{T}/{tag}/predictions.csv")))
    sc = np.array([[float(r[f"score_{k}"]) for k in range(3)] for r in rows], dtype=np.float32)
    lab = np.zeros((len(rows), 3), dtype=int)
    for i, r in enumerate(rows):
        for c in r["label"].split():
            lab[i, int(c)] = 1
    return sc, lab


vs, vl = ml_preds(C_TR + f"@split={cdir}/splits/c.json:val:seed=0", "cval")
ts, tl = ml_preds(C_TE, "ctest")
pred = np.zeros_like(tl)
for c in range(3):  # the F1-maximising threshold on validation (highest of ties), as documented
    P = vl[:, c].sum()
    best_t, best_f1 = np.nextafter(vs[:, c].max(), np.float32(np.inf)), 0.0
    for t in sorted(set(vs[:, c]), reverse=True):
        tp = ((vs[:, c] >= t) & (vl[:, c] == 1)).sum()
        fp = ((vs[:, c] >= t) & (vl[:, c] == 0)).sum()
        f1 = 2 * tp / (tp + fp + P)
        if f1 > best_f1:
            best_t, best_f1 = t, f1
    pred[:, c] = ts[:, c] >= best_t
want = f1_score(tl, pred, average="macro", zero_division=0)
check(abs(float(ct["value"]) - want) < 1e-9,
      f"macro_f1_tuned {ct['value']} = sklearn f1_score(macro) with thresholds tuned on val {want:.6f}")

# ---- bad options: one line, non-zero ----
def bad(args, want, what):
    q = run(*args, check=False)
    lines = q.stderr.strip().splitlines()
    check(q.returncode != 0 and len(lines) == 1 and lines[0].startswith("cvision: ") and want in lines[0],
          f"{what}: {q.stderr.strip()!r}")


def with_opt(opt, value):
    a = list(ARGS)
    a[a.index(opt) + 1] = value
    return a


bad(["study", *with_opt("--grid", "lr=0.05;opt=sgd"), "--out", ref_dir], "--grid", "changed grid")
bad(["study", *with_opt("--models", "mobilenet_v3_small"), "--out", ref_dir], "--models",
    "changed models")
bad(["study", *with_opt("--epochs", "3"), "--out", ref_dir], "--epochs", "changed epochs")
bad(["study", *with_opt("--grid", "lr=0.1;momentum=0.9"), "--out", f"{T}/x1"], "momentum",
    "unknown grid key")
bad(["study", *with_opt("--grid", "opt=sgdx"), "--out", f"{T}/x2"], "sgdx", "unknown optimizer")
bad(["study", *with_opt("--models", "resnet18,nosuchnet"), "--out", f"{T}/x3"], "nosuchnet",
    "unknown model")
bad(["study", *ARGS, "--test", "zz=" + A_TE, "--out", f"{T}/x4"], "zz", "--test for an unknown dataset")
bad(["study", *with_opt("--metric", "b=nosuch"), "--out", f"{T}/x5"], "nosuch", "unknown metric")
bad(["study", *with_opt("--metric", "b=macro_f1_tuned"), "--out", f"{T}/x6"], "multi-label",
    "macro_f1_tuned on single-label data")
bad(["study", "--out", f"{T}/nothing", "--report"], "no study", "--report without a study")
bad(["study", *with_opt("--weights", "mobilenet_v3_small=none"), "--out", f"{T}/x7"],
    "shufflenet_v2_x0_5", "--weights map without every model")
bad(["study", *ARGS, "--data", "a=" + A_TR, "--out", f"{T}/x8"], "twice", "a dataset given twice")
finish()
