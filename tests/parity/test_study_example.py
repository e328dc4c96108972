"""The shipped study example (scripts/study_example.sh, `make study-example`) in miniature: the
same script on the same real data (FashionMNIST pretraining, scikit-learn's digits, the shirts
task), with one model, a few pretraining steps, one grid point and one epoch.

Checks: the upstream accuracy the script records is the one `cvision eval` gives for the
pretrained checkpoint; the study's table has one row per dataset with the task metric and that
upstream figure; the data split is the documented one (1442/355 digits, 1500/500 shirts with 10%
positives); the analysis files exist; a rerun reuses everything (no run is redone)."""
import csv
import json
import os
import subprocess

import numpy as np

from cvtest import CVISION, SRC, check, finish, run, tmpdir

T = tmpdir()
OUT = f"{T}/ex"
ENV = dict(os.environ, OUT=OUT, MODELS="shufflenet_v2_x0_5", PRE_STEPS="8", EPOCHS="1",
           GRID="lr=0.01;wd=1e-4;opt=sgd;sched=cosine", THREADS="2")


def example():
    p = subprocess.run(["bash", f"{SRC}/scripts/study_example.sh", CVISION], env=ENV,
                       capture_output=True, text=True, timeout=900)
    check(p.returncode == 0, "study_example.sh succeeds" + (f": {p.stderr[-400:]}" if p.returncode else ""))
    return p


example()
D = f"{OUT}/data"
sizes = {n: len(np.load(f"{D}/{n}.npy")) for n in
         ("digits_trainY", "digits_testY", "shirts_trainY", "shirts_testY")}
check(sizes == {"digits_trainY": 1442, "digits_testY": 355, "shirts_trainY": 1500, "shirts_testY": 500},
      f"documented split sizes: {sizes}")
pos = np.load(f"{D}/shirts_trainY.npy").mean()
check(abs(pos - 0.1) < 1e-9, f"shirts: 10% positives ({pos})")

P = f"{OUT}/pretrain/shufflenet_v2_x0_5"
up = float(open(f"{P}/upstream.txt").read())
ev = json.loads(run("eval", "-m", "shufflenet_v2_x0_5", "-w", f"{P}/best.safetensors", "--data",
                    "fashionmnist:test", "--json", "--threads", "2").stdout)
check(abs(up - 100 * ev["metrics"]["accuracy_score"]) < 0.006,
      f"upstream.txt ({up}) is the pretrained model's FashionMNIST test accuracy")

with open(f"{OUT}/study/table.csv") as f:
    rows = {r["dataset"]: r for r in csv.DictReader(f)}
check(sorted(rows) == ["digits", "shirts"], f"one table row per dataset: {sorted(rows)}")
check(rows["digits"]["metric"] == "accuracy" and rows["shirts"]["metric"] == "roc_auc",
      "task metrics: accuracy for digits, ROC AUC for shirts")
check(all(abs(float(r["upstream"]) - up) < 1e-9 for r in rows.values()),
      "the table carries the upstream accuracy")
check(all(0 <= float(r["value"]) <= 1 for r in rows.values()), "test values are in [0, 1]")
for f in ("analysis.json", "analysis.csv", "report.html"):
    check(os.path.getsize(f"{OUT}/study/{f}") > 0, f"study/{f} written")

before = os.path.getmtime(f"{P}/best.safetensors")
again = example()
check("pretraining" not in again.stdout.split("== upstream")[0],
      "a rerun does not pretrain again")
check(os.path.getmtime(f"{P}/best.safetensors") == before, "the pretrained checkpoint is reused")
with open(f"{OUT}/study/table.csv") as f:
    check({r["dataset"]: r for r in csv.DictReader(f)} == rows, "a rerun gives the same table")
finish()
