"""Benchmark: `cvision metrics` against scikit-learn computing the same metric set.

    /usr/bin/python3 bench/metrics_bench.py [--n 10000000] [--k 10] [--cvision build/cvision]
                                            [--csv /tmp/cvision_bench_10000000x10.csv]

Generates n predictions over k classes (float32 probabilities with some skill; cached as a CSV),
times `cvision metrics --pred FILE --json` end to end (reading and parsing the CSV included) and
scikit-learn computing the same metrics from arrays already in memory (loading excluded), then
prints both times, the ratio and cvision's peak memory. Not part of the test suite.
"""
import argparse
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def generate(path, n, k, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.int32)
    with open(path + ".tmp", "w") as f:
        f.write("label," + ",".join(f"score_{c}" for c in range(k)) + "\n")
        step = 500_000
        for a in range(0, n, step):
            b = min(n, a + step)
            s = rng.random((b - a, k)) + np.eye(k)[y[a:b]] * rng.random((b - a, 1)) * 2
            s = (s / s.sum(1, keepdims=True)).astype(np.float32)
            cols = [y[a:b].astype(str)] + [np.char.mod("%.6g", s[:, c]) for c in range(k)]
            rows = cols[0]
            for c in cols[1:]:
                rows = np.char.add(np.char.add(rows, ","), c)
            f.write("\n".join(rows.tolist()) + "\n")
    os.replace(path + ".tmp", path)


def load(path, k):
    import torch  # noqa: F401  (fast CSV reading is not the point: loading is not timed)
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64) if os.path.getsize(
        path) < 50_000_000 else None
    if data is None:
        chunks = []
        with open(path) as f:
            f.readline()
            while True:
                lines = f.readlines(200_000_000)
                if not lines:
                    break
                chunks.append(np.array([l.split(",") for l in lines], dtype=np.float64))
        data = np.concatenate(chunks)
    return data[:, 0].astype(np.int64), data[:, 1:].astype(np.float32).astype(np.float64)


def sklearn_set(y, S):
    from sklearn import metrics as m
    K = S.shape[1]
    L = list(range(K))
    P = np.argmax(S, 1)
    out = {"accuracy_score": m.accuracy_score(y, P),
           "balanced_accuracy_score": m.balanced_accuracy_score(y, P)}
    for k in (2, 3, 5):
        if k < K:
            out[f"top_k_accuracy_score.k{k}"] = m.top_k_accuracy_score(y, S, k=k, labels=L)
    for name, f in (("precision_score", m.precision_score), ("recall_score", m.recall_score),
                    ("f1_score", m.f1_score), ("jaccard_score", m.jaccard_score)):
        for av in ("micro", "macro", "weighted", None):
            out[f"{name}.{av}"] = f(y, P, labels=L, average=av, zero_division=0)
    for av in ("micro", "macro", "weighted", None):
        out[f"fbeta_score.{av}"] = m.fbeta_score(y, P, beta=2, labels=L, average=av,
                                                 zero_division=0)
    for w in (None, "linear", "quadratic"):
        out[f"cohen_kappa_score.{w}"] = m.cohen_kappa_score(y, P, labels=L, weights=w)
    out["matthews_corrcoef"] = m.matthews_corrcoef(y, P)
    for nm in (None, "true", "pred", "all"):
        out[f"confusion_matrix.{nm}"] = m.confusion_matrix(y, P, labels=L, normalize=nm)
    out["log_loss"] = m.log_loss(y, S, labels=L)
    onehot = np.eye(K)[y]
    out["brier"] = np.mean(np.sum((S - onehot) ** 2, 1))
    conf = S[np.arange(len(y)), P]
    bins = np.searchsorted(np.linspace(0, 1, 16, dtype=np.float32), conf.astype(np.float32),
                           side="right") - 1
    cnt = np.bincount(bins, minlength=16)
    acc = np.bincount(bins, weights=(P == y), minlength=16)
    cs = np.bincount(bins, weights=conf, minlength=16)
    nz = cnt > 0
    out["ece"] = np.sum(np.abs(acc[nz] / cnt[nz] - cs[nz] / cnt[nz]) * cnt[nz]) / len(y)
    for mc in ("ovr", "ovo"):
        for av in ("macro", "weighted"):
            out[f"roc_auc_score.{mc}_{av}"] = m.roc_auc_score(y, S, multi_class=mc, average=av,
                                                              labels=L)
    for av in ("macro", "weighted", None):
        out[f"average_precision_score.{av}"] = m.average_precision_score(onehot, S, average=av)
    for c in L:
        out[f"roc_curve.{c}"] = m.roc_curve(y == c, S[:, c])
        out[f"pr_curve.{c}"] = m.precision_recall_curve(y == c, S[:, c])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cvision", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                      "cvision"))
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    path = a.csv or f"/tmp/cvision_bench_{a.n}x{a.k}.csv"
    if not os.path.exists(path):
        t = time.time()
        generate(path, a.n, a.k)
        print(f"generated {path} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.time() - t:.0f} s")
    t = time.time()
    p = subprocess.run([a.cvision, "metrics", "--pred", path, "--json"], capture_output=True,
                       text=True)
    t_cv = time.time() - t
    if p.returncode:
        sys.exit(p.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    y, S = load(path, a.k)
    t = time.time()
    sklearn_set(y, S)
    t_sk = time.time() - t
    print(f"{a.n} predictions x {a.k} classes")
    print(f"cvision metrics (CSV parse included): {t_cv:8.2f} s, peak RSS {peak:.0f} MiB")
    print(f"scikit-learn (arrays in memory):      {t_sk:8.2f} s")
    print(f"ratio: {t_sk / t_cv:.1f}x")


if __name__ == "__main__":
    main()
