"""Bad input to `cvision study`: each case exits 1 with exactly one line on stderr saying what is
wrong — never a crash, a sanitizer report or a hang. Also one tiny study (one run of one step),
its --report and --export-jobs, so that the whole path runs under ASan/UBSan and LeakSanitizer.
Runs against the ASan/UBSan build."""
import os
import sqlite3

import numpy as np

from cvtest import check, finish, run, tmpdir


def expect_error(what, args, *needles):
    p = run("study", *args, check=False, timeout=300)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    ok = p.returncode == 1 and len(lines) == 1 and lines[0].startswith("cvision: ")
    ok = ok and all(n in lines[0] for n in needles)
    check(ok, f"{what}: rc={p.returncode} stderr={p.stderr.strip()[:300]!r}")


d = tmpdir()
rng = np.random.RandomState(0)
y = np.arange(40) % 3
np.save(f"{d}/X.npy", (rng.rand(40, 16, 16) * 255).astype(np.uint8))
np.save(f"{d}/Y.npy", y.astype(np.int64))
np.save(f"{d}/Yt.npy", (np.arange(40) % 2).astype(np.int64))  # test data without class 2
np.save(f"{d}/Yx.npy", (np.arange(40) % 5).astype(np.int64))  # test data with unknown classes
DATA = f"a=npy:{d}/X.npy,{d}/Y.npy"
BASE = ["--models", "mobilenet_v3_small", "--weights", "none", "--data", DATA, "--epochs", "1",
        "--max-steps", "1", "--batch", "8", "--threads", "1", "--workers", "1", "--quiet"]


def args(out, **over):
    a = list(BASE)
    for k, v in over.items():
        opt = "--" + k.replace("_", "-")
        if opt in a:
            a[a.index(opt) + 1] = v
        else:
            a += [opt, v]
    return a + ["--out", f"{d}/{out}"]


# the good path
good = f"{d}/good"
p = run("study", *args("good", grid="lr=0.01"), "--test", f"a=npy:{d}/X.npy,{d}/Yt.npy", check=False,
        timeout=600)
check(p.returncode == 0 and os.path.exists(f"{good}/table.csv"), f"tiny study: {p.stderr[-300:]!r}")
con = sqlite3.connect(f"{good}/study.sqlite")
check(con.execute("SELECT status, test_samples FROM runs").fetchall() == [("done", 40)],
      "test data lacking a class is scored (labels mapped by class name)")
con.close()
p = run("study", *args("unknown", grid="lr=0.01"), "--test", f"a=npy:{d}/X.npy,{d}/Yx.npy", check=False,
        timeout=600)
con = sqlite3.connect(f"{d}/unknown/study.sqlite")
err = con.execute("SELECT status, error FROM runs").fetchall()
con.close()
check(p.returncode == 0 and err[0][0] == "failed" and "class '3' is not a class" in err[0][1],
      f"a test class unknown to training fails the run with a message: {err}")
p = run("study", *args("withval", grid="lr=0.01"), "--val", f"a=npy:{d}/X.npy,{d}/Y.npy@first=12",
        "--train-transform", "grayscale(3),to_tensor,normalize(imagenet)", check=False, timeout=600)
check(p.returncode == 0 and not os.path.exists(f"{d}/withval/splits"),
      f"tiny study with --val and a transform (no split made): {p.stderr[-300:]!r}")
p = run("study", "--out", good, "--report", check=False, timeout=300)
check(p.returncode == 0 and "(accuracy)" in p.stdout, f"--report: {p.stderr[-300:]!r}")
p = run("study", *args("good", grid="lr=0.01"), "--test", f"a=npy:{d}/X.npy,{d}/Yt.npy", "--export-jobs", f"{d}/jobs.txt", check=False)
check(p.returncode == 0 and open(f"{d}/jobs.txt").read() == "", "--export-jobs of a finished study")

# options
expect_error("grid: empty value", args("g1", grid="lr="), "--grid", "empty")
expect_error("grid: not a number", args("g2", grid="lr=abc"), "abc")
expect_error("grid: negative", args("g3", grid="wd=-1"), "-1")
expect_error("grid: duplicate value", args("g4", grid="lr=0.1,0.10"), "twice")
expect_error("grid: duplicate key", args("g5", grid="lr=0.1;lr=0.2"), "twice")
expect_error("grid: bad schedule", args("g6", grid="sched=cosine --bogus 1"), "schedule")
expect_error("grid: no '='", args("g7", grid="lr"), "KEY=V1")
expect_error("--only 0", args("o1", only="0"), "--only")
expect_error("--stale -1", args("o2", stale="-1"), "--stale")
expect_error("--seed -1", args("o3", seed="-1"), "--seed")
expect_error("--epochs 0", args("o4", epochs="0"), "--epochs")
expect_error("--batch 1", args("o5", batch="1"), "--batch")
expect_error("--data without NAME=", ["--models", "resnet18", "--data", "npy:x", "--out", f"{d}/o6"],
             "NAME=VALUE")
expect_error("--data with a bad name", ["--models", "resnet18", "--data", "a b=npy:x,y", "--out",
                                        f"{d}/o7"], "a b")
expect_error("no --out", ["--models", "resnet18", "--data", DATA], "--out")
expect_error("no --models", ["--data", DATA, "--out", f"{d}/o8"], "--models")
expect_error("--upstream not a number", args("u1", upstream="mobilenet_v3_small=abc"), "abc")
expect_error("--upstream unknown model", args("u2", upstream="resnet18=50"), "resnet18")
expect_error("missing data file", args("m1", data=f"a=npy:{d}/nope.npy,{d}/Y.npy"), "nope.npy")
expect_error("':' in --out", BASE + ["--out", f"{d}/x:y"], "':'")
expect_error("weights file missing", args("w1", weights=f"{d}/none.safetensors"), "none.safetensors")
expect_error("changed dataset", args("good", data=f"a=npy:{d}/X.npy,{d}/Y.npy@first=30"),
             "--data")
expect_error("--only beyond the runs", args("good", grid="lr=0.01", only="7") +
             ["--test", f"a=npy:{d}/X.npy,{d}/Yt.npy"], "1..1")

# damaged databases
os.makedirs(f"{d}/junk")
with open(f"{d}/junk/study.sqlite", "wb") as f:
    f.write(rng.bytes(4096))
expect_error("a study.sqlite that is not SQLite", ["--out", f"{d}/junk", "--report"], "study.sqlite")
expect_error("a study.sqlite that is not SQLite (run)", args("junk"), "study.sqlite")
os.makedirs(f"{d}/bad")
con = sqlite3.connect(f"{d}/bad/study.sqlite")
con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
con.execute("INSERT INTO meta VALUES('config', '{not json')")
con.commit()
con.close()
expect_error("stored options not JSON (report)", ["--out", f"{d}/bad", "--report"], "damaged")
expect_error("stored options not JSON (run)", args("bad"), "not JSON")
expect_error("no study for --report", ["--out", f"{d}/empty", "--report"], "no study")
finish()
