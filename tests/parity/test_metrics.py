"""Parity of `cvision metrics --json` with scikit-learn 1.2 (and torchmetrics' calibration binning,
re-implemented with torch) on random and edge cases.

Every key cvision writes under "metrics" must have a reference here, and every reference must
match: relative tolerance 1e-9 (absolute 1e-12) for all values -- counts-derived metrics are
exact, and ranking/probability metrics are computed in float64 from the same float32 scores on
both sides (the scores are written as float32 with 9 significant digits, which round-trips).
Where scikit-learn raises or returns NaN, cvision must write null and give a reason.
The ROC/PR curves, the bootstrap CIs (re-drawn here with the same generator) and the operating
thresholds are checked too.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
from sklearn import metrics as skm

warnings.filterwarnings("ignore")
CVISION = os.environ.get("CVISION", "cvision")
RTOL, ATOL = 1e-9, 1e-12
failures = []


def fail(case, msg):
    failures.append(f"{case}: {msg}")


def safe(f, *a, **k):
    try:
        v = f(*a, **k)
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    if np.ndim(v) == 0:
        v = float(v)
        return None if np.isnan(v) else v
    return np.asarray(v, dtype=np.float64)


# ---------------------------------------------------------------- reference computations
def torchmetrics_ce(conf, acc, n_bins=15):
    """torchmetrics' _binning_bucketize + _ce_compute (l1 and max), sums in float64."""
    conf = torch.tensor(conf, dtype=torch.float32)
    bounds = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)
    idx = torch.bucketize(conf, bounds, right=True) - 1
    cnt = torch.zeros(n_bins + 1, dtype=torch.float64)
    cs = torch.zeros(n_bins + 1, dtype=torch.float64)
    accs = torch.zeros(n_bins + 1, dtype=torch.float64)
    cnt.scatter_add_(0, idx, torch.ones_like(conf, dtype=torch.float64))
    cs.scatter_add_(0, idx, conf.double())
    accs.scatter_add_(0, idx, torch.tensor(acc, dtype=torch.float64))
    cb = torch.nan_to_num(cs / cnt)
    ab = torch.nan_to_num(accs / cnt)
    prop = cnt / cnt.sum()
    return float(torch.sum(torch.abs(ab - cb) * prop)), float(torch.max(torch.abs(ab - cb)))


def prf_refs(ref, yt, yp, labels, averages, binary):
    fam = {
        "precision_score": skm.precision_score,
        "recall_score": skm.recall_score,
        "f1_score": skm.f1_score,
        "fbeta_score": lambda *a, **k: skm.fbeta_score(*a, beta=2.0, **k),
        "jaccard_score": skm.jaccard_score,
    }
    for name, f in fam.items():
        for av in averages:
            key = f"{name}.{av}" if av else f"{name}.per_class"
            ref[key] = safe(f, yt, yp, labels=labels, average=av, zero_division=0)
        if binary:
            ref[name] = safe(f, yt, yp, average="binary", zero_division=0)


def single_label_ref(task, K, y, S, P):
    L = list(range(K))
    ref = {}
    ref["accuracy_score"] = skm.accuracy_score(y, P)
    ref["balanced_accuracy_score"] = safe(skm.balanced_accuracy_score, y, P)
    prf_refs(ref, y, P, L, ["micro", "macro", "weighted", None], task == "binary")
    ref["support.per_class"] = skm.precision_recall_fscore_support(
        y, P, labels=L, zero_division=0)[3].astype(float)
    ref["cohen_kappa_score"] = safe(skm.cohen_kappa_score, y, P, labels=L)
    ref["cohen_kappa_score.linear"] = safe(skm.cohen_kappa_score, y, P, labels=L, weights="linear")
    ref["cohen_kappa_score.quadratic"] = safe(skm.cohen_kappa_score, y, P, labels=L,
                                              weights="quadratic")
    ref["matthews_corrcoef"] = skm.matthews_corrcoef(y, P)
    if task == "ordinal":
        ref["mean_absolute_error"] = skm.mean_absolute_error(y, P)
    ref["confusion_matrix"] = skm.confusion_matrix(y, P, labels=L).astype(float)
    for nm in ("true", "pred", "all"):
        ref[f"confusion_matrix.normalized_{nm}"] = skm.confusion_matrix(y, P, labels=L,
                                                                        normalize=nm)
    if S is None:
        return ref, {}
    for k in (2, 3, 5):
        if k < K:
            ref[f"top_k_accuracy_score.k{k}"] = skm.top_k_accuracy_score(y, S, k=k, labels=L)
    ref["log_loss"] = safe(skm.log_loss, y, S, labels=L) if K >= 2 else None
    in01 = S.min() >= 0 and S.max() <= 1
    onehot = np.eye(K)[y]
    if task == "binary":
        ref["brier_score_loss"] = safe(skm.brier_score_loss, y, S[:, 1])
        ece = torchmetrics_ce(S[:, 1].astype(np.float32), (y == 1).astype(float))
        ref["roc_auc_score"] = safe(skm.roc_auc_score, y, S[:, 1])
        ref["average_precision_score"] = safe(skm.average_precision_score, y, S[:, 1])
    else:
        ref["brier_score_loss"] = float(np.mean(np.sum((S - onehot) ** 2, axis=1))) if in01 else None
        am = np.argmax(S, axis=1)
        ece = torchmetrics_ce(S[np.arange(len(y)), am].astype(np.float32), (am == y).astype(float))
        per = [safe(skm.roc_auc_score, onehot[:, c], S[:, c]) for c in L]
        ref["roc_auc_score.per_class"] = np.array([np.nan if v is None else v for v in per])
        if K >= 3:
            for mc in ("ovr", "ovo"):
                for av in ("macro", "weighted"):
                    ref[f"roc_auc_score.{mc}_{av}"] = safe(skm.roc_auc_score, y, S, multi_class=mc,
                                                           average=av, labels=L)
        else:  # scikit-learn routes 2 columns to the binary case: the same definitions by hand
            sums1 = np.allclose(1, S.sum(axis=1))
            ok = sums1 and None not in per
            ref["roc_auc_score.ovr_macro"] = float(np.mean(per)) if ok else None
            w = onehot.sum(0)
            ref["roc_auc_score.ovr_weighted"] = float(np.average(per, weights=w)) if ok else None
            present = [c for c in L if (y == c).any()]
            if sums1 and len(present) == 2:
                m = np.isin(y, present)
                a = skm.roc_auc_score(y[m] == 0, S[m, 0])
                b = skm.roc_auc_score(y[m] == 1, S[m, 1])
                ref["roc_auc_score.ovo_macro"] = ref["roc_auc_score.ovo_weighted"] = (a + b) / 2
            else:
                ref["roc_auc_score.ovo_macro"] = ref["roc_auc_score.ovo_weighted"] = None
        ref["average_precision_score.macro"] = skm.average_precision_score(onehot, S,
                                                                           average="macro")
        ref["average_precision_score.weighted"] = skm.average_precision_score(onehot, S,
                                                                              average="weighted")
        ref["average_precision_score.per_class"] = skm.average_precision_score(onehot, S,
                                                                               average=None)
    ref["calibration_error.ece"] = ece[0] if in01 else None
    ref["calibration_error.mce"] = ece[1] if in01 else None
    curves = {}
    classes = [1] if task == "binary" else L
    for c in classes:
        suffix = "" if task == "binary" else f".class_{c}"
        t = (y == c).astype(int)
        fpr, tpr, thr = skm.roc_curve(t, S[:, c])
        curves["roc_curve" + suffix] = {"fpr": fpr, "tpr": tpr, "thresholds": thr}
        pr, rc, thr = skm.precision_recall_curve(t, S[:, c])
        curves["precision_recall_curve" + suffix] = {"precision": pr, "recall": rc,
                                                     "thresholds": np.r_[thr, np.nan]}
    return ref, curves


def multilabel_ref(K, Y, S, P):
    ref = {}
    ref["accuracy_score"] = skm.accuracy_score(Y, P)
    ref["hamming_loss"] = skm.hamming_loss(Y, P)
    prf_refs(ref, Y, P, None, ["micro", "macro", "weighted", "samples", None], False)
    ref["support.per_class"] = Y.sum(0).astype(float)
    ref["multilabel_confusion_matrix"] = skm.multilabel_confusion_matrix(Y, P).reshape(K, 4)
    if S is None:
        return ref, {}
    for av in ("micro", "macro", "weighted"):
        ref[f"roc_auc_score.{av}"] = safe(skm.roc_auc_score, Y, S, average=av)
        ref[f"average_precision_score.{av}"] = skm.average_precision_score(Y, S, average=av)
    per = [safe(skm.roc_auc_score, Y[:, c], S[:, c]) for c in range(K)]
    ref["roc_auc_score.per_class"] = np.array([np.nan if v is None else v for v in per])
    ref["average_precision_score.per_class"] = skm.average_precision_score(Y, S, average=None)
    curves = {}
    for c in range(K):
        fpr, tpr, thr = skm.roc_curve(Y[:, c], S[:, c])
        curves[f"roc_curve.class_{c}"] = {"fpr": fpr, "tpr": tpr, "thresholds": thr}
        pr, rc, thr = skm.precision_recall_curve(Y[:, c], S[:, c])
        curves[f"precision_recall_curve.class_{c}"] = {"precision": pr, "recall": rc,
                                                       "thresholds": np.r_[thr, np.nan]}
    return ref, curves


# ---------------------------------------------------------------- running cvision
def write_csv(path, task, K, y, S, P):
    with open(path, "w") as f:
        cols = ["label"] + ([f"score_{k}" for k in range(K)] if S is not None else []) + \
               (["pred"] if P is not None else [])
        f.write(",".join(cols) + "\n")
        for i in range(len(y)):
            if task == "multilabel":
                row = [" ".join(str(c) for c in np.flatnonzero(y[i]))]
            else:
                row = [str(int(y[i]))]
            if S is not None:
                row += ["%.9g" % v for v in S[i]]
            if P is not None:
                row.append(" ".join(str(c) for c in np.flatnonzero(P[i])) if task == "multilabel"
                           else str(int(P[i])))
            f.write(",".join(row) + "\n")


def run(args):
    p = subprocess.run([CVISION, "metrics"] + args, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"cvision {' '.join(args)} failed: {p.stderr.strip()}")
    return json.loads(p.stdout)


def close(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    return bool(np.all((np.isnan(a) & np.isnan(b)) |
                       (np.abs(a - b) <= ATOL + RTOL * np.abs(b))))


def as_array(v):
    return np.array(v if not isinstance(v, list) else
                    [[np.nan if x is None else x for x in r] if isinstance(r, list) else
                     (np.nan if r is None else r) for r in v], dtype=np.float64)


def compare(case, out, ref, curves):
    got = out["metrics"]
    for k in sorted(set(got) - set(ref)):
        fail(case, f"cvision writes '{k}' but the test has no reference for it")
    for k, want in ref.items():
        if k not in got:
            fail(case, f"missing '{k}'")
            continue
        v = got[k]
        if want is None:
            if v is not None:
                fail(case, f"{k}: scikit-learn refuses it, cvision gives {v}")
            elif not out["undefined"].get(k):
                fail(case, f"{k}: null without a reason")
            continue
        if v is None:
            fail(case, f"{k}: cvision null ({out['undefined'].get(k)}), scikit-learn {want}")
            continue
        if not close(as_array(v), want):
            fail(case, f"{k}: cvision {v} != scikit-learn {np.asarray(want).tolist()}")
    for name, rows in curves.items():
        gc = out["curves"].get(name)
        if gc is None:
            fail(case, f"missing curve {name}")
            continue
        for r, want in rows.items():
            if not close(as_array(gc[r]), want):
                fail(case, f"curve {name}.{r}: {gc[r][:6]}... != {np.asarray(want)[:6]}...")


def check(case, task, K, y, S=None, P=None, extra=()):
    if S is not None:
        S = S.astype(np.float32).astype(np.float64)  # what cvision reads from the CSV
    if P is None and S is not None:
        P = (S >= 0.5).astype(int) if task == "multilabel" else np.argmax(S, axis=1)
        given = None
    else:
        given = P
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "pred.csv")
        write_csv(path, task, K, y, S, given)
        args = ["--pred", path, "--task", task, "--json", "--curve-points", "0", *extra]
        if S is None:
            args += ["--classes", str(K)]
        out = run(args)
    if task == "multilabel":
        ref, curves = multilabel_ref(K, y, S, P)
    else:
        ref, curves = single_label_ref(task, K, y, S, P)
    compare(case, out, ref, curves)
    return out


# ---------------------------------------------------------------- cases
def probs(rng, n, K, sharp=1.0):
    return rng.dirichlet(np.full(K, sharp), n)


def main():
    rng = np.random.default_rng(1234)
    ncase = 0
    # random cases
    for i in range(12):
        n = int(rng.integers(20, 400))
        check(f"binary#{i}", "binary", 2, rng.integers(0, 2, n), probs(rng, n, 2, 0.7))
        ncase += 1
    for K in range(2, 13):
        for i in range(2):
            n = int(rng.integers(30, 500))
            y = rng.integers(0, K, n)
            S = probs(rng, n, K, 0.5)
            S[np.arange(n), y] += rng.random(n) * (i + 1)  # some skill
            S /= S.sum(1, keepdims=True)
            check(f"multiclass K={K}#{i}", "multiclass", K, y, S)
            ncase += 1
    for i in range(4):
        K, n = 5, int(rng.integers(50, 400))
        y = rng.integers(0, K, n)
        p = np.clip(y + rng.integers(-1, 2, n), 0, K - 1)
        S = np.full((n, K), 0.02)
        S[np.arange(n), p] = 1 - 0.02 * (K - 1)
        check(f"ordinal#{i}", "ordinal", K, y, S)
        check(f"ordinal preds#{i}", "ordinal", K, y, None, p)
        ncase += 2
    for i in range(6):
        K, n = int(rng.integers(2, 9)), int(rng.integers(20, 300))
        Y = (rng.random((n, K)) < rng.random(K) * 0.6).astype(int)
        S = np.clip(Y * 0.3 + rng.random((n, K)) * 0.7, 0, 1)
        check(f"multilabel#{i}", "multilabel", K, Y, S)
        ncase += 1
    # edge cases
    n, K = 120, 4
    y = rng.integers(0, K, n)
    S = probs(rng, n, K)
    S[:, 2] *= 0.01  # class 2 never wins the argmax
    S /= S.sum(1, keepdims=True)
    check("class never predicted", "multiclass", K, y, S)
    p = np.where(y == 2, 0, y)
    check("class never predicted (preds)", "multiclass", K, y, None, p)
    y2 = np.where(y == 3, 1, y)
    check("class absent from labels", "multiclass", K, y2, S)
    check("class absent from labels (binary-like, K=3)", "multiclass", 3,
          rng.integers(0, 2, 50), probs(rng, 50, 3))
    check("single class in labels", "multiclass", K, np.zeros(40, int), probs(rng, 40, K))
    check("single class everywhere", "multiclass", K, np.zeros(40, int), None, np.zeros(40, int))
    check("binary single class", "binary", 2, np.ones(30, int), probs(rng, 30, 2))
    t = rng.integers(0, 5, (200, 1)) / 4.0  # ties: 5 score values
    check("binary tied scores", "binary", 2, rng.integers(0, 2, 200), np.hstack([1 - t, t]))
    templates = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5],
                          [0.4, 0.4, 0.2], [1 / 3, 1 / 3, 1 / 3]])
    check("multiclass tied scores", "multiclass", 3, rng.integers(0, 3, 150),
          templates[rng.integers(0, 5, 150)])
    y = rng.integers(0, 6, 90)
    check("perfect", "multiclass", 6, y, np.eye(6)[y])
    check("all wrong", "multiclass", 6, y, np.eye(6)[(y + 1) % 6])
    check("binary perfect", "binary", 2, y % 2, np.eye(2)[y % 2])
    check("binary all wrong", "binary", 2, y % 2, np.eye(2)[1 - y % 2])
    Y = (rng.random((80, 5)) < 0.3).astype(int)
    Y[:20] = 0  # rows with no positive label
    S = rng.random((80, 5))
    S[10:30] *= 0.4  # rows with no predicted label
    check("multilabel rows without positives", "multilabel", 5, Y, S)
    Y[:, 3] = 0  # a label that never occurs
    check("multilabel absent label", "multilabel", 5, Y, S)
    check("multilabel all negative", "multilabel", 3, np.zeros((30, 3), int), rng.random((30, 3)))
    check("multilabel preds only", "multilabel", 5, Y, None, (rng.random((80, 5)) < 0.3).astype(int))
    y = rng.integers(0, 3, 60)
    S = np.full((60, 3), 1e-9)
    S[np.arange(60), (y + (np.arange(60) % 4 == 0)) % 3] = 1 - 2e-9
    check("values 1e-9", "multiclass", 3, y, S)
    S = np.full((60, 2), 1e-9)
    S[:, 1] = 1 - 1e-9
    S[::3] = [1 - 1e-9, 1e-9]
    check("binary values 1e-9", "binary", 2, y % 2, S)
    check("multilabel values 1e-9", "multilabel", 3, (S[:, :1] > 0.5).astype(int) * np.ones((1, 3), int),
          np.full((60, 3), 1e-9) + (np.arange(60) % 2)[:, None] * 0.5)
    ncase += 20
    # scores that are not probabilities: ranking metrics that need them are null with a reason
    y = rng.integers(0, 3, 50)
    S = rng.random((50, 3)) * 3
    out = check("unnormalised scores", "multiclass", 3, y, S)
    assert "sum to 1" in out["undefined"].get("roc_auc_score.ovr_macro", ""), out["undefined"]

    # bootstrap: re-draw the replicates with the same generator and compare the percentiles
    n = 150
    y = rng.integers(0, 3, n)
    S = probs(rng, n, 3, 0.8)
    S[np.arange(n), y] += 0.3
    S = (S / S.sum(1, keepdims=True)).astype(np.float32).astype(np.float64)
    B, seed = 60, 7
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.csv")
        write_csv(path, "multiclass", 3, y, S, None)
        out = run(["--pred", path, "--json", "--ci", str(B), "--seed", str(seed)])
        again = run(["--pred", path, "--json", "--ci", str(B), "--seed", str(seed)])
    if out["confidence_intervals"] != again["confidence_intervals"]:
        fail("bootstrap", "the same seed gave different intervals")
    M = (1 << 64) - 1
    x = seed
    reps = {"accuracy_score": [], "roc_auc_score.ovo_macro": [], "log_loss": []}
    P = np.argmax(S, 1)
    for _ in range(B):
        w = np.zeros(n, int)
        for _ in range(n):
            x = (x + 0x9E3779B97F4A7C15) & M
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            z ^= z >> 31
            w[(z * n) >> 64] += 1
        idx = np.repeat(np.arange(n), w)
        reps["accuracy_score"].append(skm.accuracy_score(y[idx], P[idx]))
        reps["log_loss"].append(skm.log_loss(y[idx], S[idx], labels=[0, 1, 2]))
        v = safe(skm.roc_auc_score, y[idx], S[idx], multi_class="ovo", labels=[0, 1, 2])
        if v is not None:
            reps["roc_auc_score.ovo_macro"].append(v)
    for k, v in reps.items():
        want = np.percentile(v, [2.5, 97.5])
        got = out["confidence_intervals"]["values"].get(k)
        if got is None or not close(got, want):
            fail("bootstrap", f"{k}: CI {got} != {want.tolist()}")
    ci_keys = set(out["confidence_intervals"]["values"])
    scalars = {k for k, v in out["metrics"].items() if not isinstance(v, list) and v is not None}
    if scalars - ci_keys:
        fail("bootstrap", f"scalars without a CI: {sorted(scalars - ci_keys)}")

    # operating thresholds: brute force over every candidate threshold
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.csv")
        yb = rng.integers(0, 2, 300)
        t = np.clip(0.35 * yb + rng.random(300) * 0.65, 0, 1)  # some skill
        Sb = np.stack([1 - t, t], 1).astype(np.float32).astype(np.float64)
        write_csv(path, "binary", 2, yb, Sb, None)
        out = run(["--pred", path, "--json", "--target-recall", "0.8", "--target-precision",
                   "0.6", "--cost", "2.5"])
    s = Sb[:, 1]
    cands = np.unique(s)

    def point(t):
        pp = s >= t
        tp = int(np.sum(pp & (yb == 1)))
        fp = int(np.sum(pp & (yb == 0)))
        return tp, fp, int(np.sum(yb == 1)) - tp, int(np.sum(yb == 0)) - fp

    rec = [t for t in cands if point(t)[0] / max(1, yb.sum()) >= 0.8]
    prec = [t for t in cands if point(t)[0] / max(1, point(t)[0] + point(t)[1]) >= 0.6]
    costs = [(2.5 * point(t)[1] + point(t)[2], -t) for t in cands]
    want = {"target_recall": max(rec), "target_precision": min(prec),
            "min_cost": -min(costs)[1]}
    for k, t in want.items():
        got = out["thresholds"][k]
        tp, fp, fn, tn = point(t)
        if not close(got["threshold"], t) or got["confusion_matrix"] != [[tn, fp], [fn, tp]]:
            fail("thresholds", f"{k}: {got} != threshold {t}, [[{tn}, {fp}], [{fn}, {tp}]]")

    # multilabel thresholds tuned on validation data, applied to the test file
    K = 4
    Yv = (rng.random((200, K)) < 0.35).astype(int)
    Sv = np.clip(0.3 * Yv + 0.7 * rng.random((200, K)), 0, 1).astype(np.float32).astype(float)
    Yt = (rng.random((150, K)) < 0.35).astype(int)
    St = np.clip(0.3 * Yt + 0.7 * rng.random((150, K)), 0, 1).astype(np.float32).astype(float)
    with tempfile.TemporaryDirectory() as d:
        pv, pt = os.path.join(d, "val.csv"), os.path.join(d, "test.csv")
        write_csv(pv, "multilabel", K, Yv, Sv, None)
        write_csv(pt, "multilabel", K, Yt, St, None)
        out = run(["--pred", pt, "--val", pv, "--task", "multilabel", "--json"])
    thr = np.array(out["tuned_thresholds"])
    for c in range(K):  # each threshold maximises that class's F1 on the validation data
        best = max(skm.f1_score(Yv[:, c], Sv[:, c] >= t, zero_division=0) for t in Sv[:, c])
        got = skm.f1_score(Yv[:, c], Sv[:, c] >= thr[c], zero_division=0)
        if not close(got, best):
            fail("tuned thresholds", f"class {c}: F1 {got} at {thr[c]}, best {best}")
    want = skm.f1_score(Yt, St >= thr[None, :].astype(np.float32), average="macro", zero_division=0)
    if not close(out["metrics"]["f1_score.macro"], want):
        fail("tuned thresholds", f"test f1 macro {out['metrics']['f1_score.macro']} != {want}")

    # paired bootstrap from the CLI: a clearly better model is found better, itself is not
    y = rng.integers(0, 3, 300)
    good = np.where(rng.random(300) < 0.9, y, (y + 1) % 3)
    bad = np.where(rng.random(300) < 0.6, y, (y + 1) % 3)
    with tempfile.TemporaryDirectory() as d:
        pa, pb = os.path.join(d, "a.csv"), os.path.join(d, "b.csv")
        write_csv(pa, "multiclass", 3, y, None, good)
        write_csv(pb, "multiclass", 3, y, None, bad)
        c1 = run(["--pred", pa, "--compare", pb, "--classes", "3", "--ci", "200", "--json"])
        c2 = run(["--pred", pa, "--compare", pa, "--classes", "3", "--ci", "50", "--json"])
    c1, c2 = c1["comparison"], c2["comparison"]
    if not (c1["a_better"] and close(c1["value_a"], skm.accuracy_score(y, good)) and
            close(c1["value_b"], skm.accuracy_score(y, bad)) and c1["p_value"] < 0.01):
        fail("paired bootstrap", str(c1))
    if c2["a_better"] or c2["b_better"] or c2["difference"] != 0:
        fail("paired bootstrap", f"a model against itself: {c2}")

    print(f"{ncase} metric cases, bootstrap, thresholds, tuning and comparison checked")
    if failures:
        print("\n".join(failures[:60]))
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
