"""The study analysis statistics (cvision study-report) against SciPy 1.10: Pearson r and its
exact p-value (scipy.stats.pearsonr), Spearman rho with average ranks and its t-approximation
p-value (spearmanr), and the OLS fit (linregress: slope, intercept, r, p-value, both standard
errors), on random and edge-case inputs (ties, n = 3, negative and perfect correlation, constant
vectors, NaN values, n = 2). Tolerance: 1e-9 relative (plus 1e-14 absolute for values near 0).
The bootstrap intervals are checked exactly (1e-9) against a Python re-implementation of the same
scheme: cvision's counter RNG (splitmix64, cv_rng_init/randint), models resampled with
replacement, numpy's linear percentile; and the output is identical for a seed, different for
another."""
import csv
import json
import math
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cvtest import check, finish, run, tmpdir  # noqa: E402

M64 = (1 << 64) - 1
RTOL, ATOL = 1e-9, 1e-14


def close(a, b):
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    if a is None:
        return False
    return abs(a - b) <= RTOL * abs(b) + ATOL


# ---- cvision's RNG (src/data/rng.c) ----
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Rng:
    def __init__(self, seed, stream):
        self.s = mix64(mix64((seed + 0x9E3779B97F4A7C15) & M64) ^ ((stream * 0xD1B54A32D192ED03) & M64))

    def randint(self, n):  # [0, n), rejection as cv_rng_randint
        if n <= 1:
            return 0
        limit = M64 - M64 % n
        while True:
            self.s = (self.s + 0x9E3779B97F4A7C15) & M64
            x = mix64(self.s)
            if x < limit:
                return x % n


def fnv1a(s):
    h = 0xcbf29ce484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001b3) & M64
    return h


def stat_or_nan(f, x, y):
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return f(x, y)


def replicate_stats(x, y):
    p = stat_or_nan(lambda a, b: stats.pearsonr(a, b)[0], x, y)
    s = stat_or_nan(lambda a, b: stats.spearmanr(a, b)[0], x, y)
    ns = math.nan if len(x) < 3 or np.all(x == x[0]) else stats.linregress(x / 100, y).slope if np.any(y != y[0]) else 0.0
    return p, s, ns


def boot(x, y, x2, seed, stream, B, level=0.95):
    """Intervals for pearson, spearman, normalized slope (and the Spearman difference x2 - x)."""
    rng = Rng(seed, stream)
    n = len(x)
    vals = [[], [], [], []]
    for _ in range(B):
        idx = np.array([rng.randint(n) for _ in range(n)])
        r = replicate_stats(x[idx], y[idx])
        for k in range(3):
            vals[k].append(r[k])
        if x2 is not None:
            s2 = stat_or_nan(lambda a, b: stats.spearmanr(a, b)[0], x2[idx], y[idx])
            vals[3].append(s2 - r[1])
    out = []
    for v in vals:
        v = np.array([t for t in v if not math.isnan(t)])
        if len(v) == 0:
            out.append((None, None, 0))
        else:
            a = (1 - level) / 2
            out.append((np.percentile(v, 100 * a), np.percentile(v, 100 * (1 - a)), len(v)))
    return out


def cases(rng):
    c = {}
    for i, n in enumerate([3, 4, 5, 8, 12, 20, 35, 60]):
        x = rng.uniform(55, 85, n)
        y = 0.5 + 0.004 * (x - 70) * rng.choice([-1, 1]) + rng.normal(0, 0.02, n)
        c[f"random{i}"] = (x, y)
    x = rng.integers(60, 66, 15).astype(float)  # ties in both
    c["ties"] = (x, np.round(0.8 + 0.01 * x + rng.integers(0, 3, 15) * 0.01, 2))
    x = rng.uniform(55, 85, 10)
    c["negative"] = (x, 1.2 - 0.01 * x + rng.normal(0, 0.01, 10))
    x = np.sort(rng.uniform(55, 85, 7))
    c["monotone"] = (x, np.sort(rng.uniform(0.5, 0.9, 7)))  # rho = 1
    c["const_y"] = (rng.uniform(55, 85, 6), np.full(6, 0.75))
    c["const_x"] = (np.full(6, 70.0), rng.uniform(0.5, 0.9, 6))
    x, y = rng.uniform(55, 85, 9), rng.uniform(0.5, 0.9, 9)
    y[[1, 4]] = np.nan
    x[6] = np.nan
    c["with_nan"] = (x, y)
    c["two"] = (np.array([60.0, 70.0]), np.array([0.8, 0.9]))
    c["qwk_like"] = (rng.uniform(55, 85, 10), rng.uniform(-0.2, 0.95, 10))
    return c


def fmt(v):
    return "" if math.isnan(v) else repr(float(v))


def main():
    rng = np.random.default_rng(7)
    data = cases(rng)
    d = tmpdir()
    res = os.path.join(d, "results.csv")
    with open(res, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["value", "model", "metric", "dataset", "upstream"])  # any column order
        for name, (x, y) in data.items():
            for i in range(len(x)):
                w.writerow([fmt(y[i]), f"m{i}", "accuracy", name, fmt(x[i])])
    B, seed = 200, 12345
    run("study-report", "--results", res, "--out", os.path.join(d, "a"), "--seed", seed, "--boot", B)
    run("study-report", "--results", res, "--out", os.path.join(d, "b"), "--seed", seed, "--boot", B)
    run("study-report", "--results", res, "--out", os.path.join(d, "c"), "--seed", seed + 1, "--boot", B)
    for fn in ["analysis.json", "analysis.csv", "report.html"]:
        same = open(os.path.join(d, "a", fn), "rb").read() == open(os.path.join(d, "b", fn), "rb").read()
        check(same, f"{fn} is identical for the same seed")
    A = json.load(open(os.path.join(d, "a", "analysis.json")))
    C = json.load(open(os.path.join(d, "c", "analysis.json")))
    check(A["datasets"][5]["pearson_r"]["ci"] != C["datasets"][5]["pearson_r"]["ci"],
          "another seed gives other intervals")
    by = {ds["name"]: ds for ds in A["datasets"]}
    check(list(by) == list(data), "datasets in input order")

    for name, (x, y) in data.items():
        ds = by[name]
        keep = np.isfinite(x) & np.isfinite(y)
        order = sorted(np.flatnonzero(keep), key=lambda i: (x[i], f"m{i}"))
        xs, ys = x[order], y[order]
        check([m["model"] for m in ds["models"]] == [f"m{i}" for i in order],
              f"{name}: models sorted by upstream, NaN rows left out")
        check(len(ds["excluded"]) == int((~keep).sum()), f"{name}: excluded rows listed with a reason")
        n = len(xs)
        defined = n >= 3 and np.any(xs != xs[0]) and np.any(ys != ys[0])
        if defined:
            pr = stats.pearsonr(xs, ys)
            sr = stats.spearmanr(xs, ys)
            want = {"pearson_r": (pr[0], pr[1]), "spearman_rho": (sr[0], sr[1])}
        else:
            want = {"pearson_r": (math.nan, math.nan), "spearman_rho": (math.nan, math.nan)}
            check(ds["undefined"].get("pearson_r") and ds["undefined"].get("spearman_rho"),
                  f"{name}: undefined correlations have a reason")
        for key, (r, p) in want.items():
            got = ds[key]
            check(close(got["value"], r), f"{name}: {key} {got['value']} vs scipy {r}")
            if name == "monotone" and key == "spearman_rho":  # rho = 1: p-value 0 or denormal-small
                check(got["p_value"] is not None and got["p_value"] < 1e-6, f"{name}: {key} p-value ~ 0")
            else:
                check(close(got["p_value"], p), f"{name}: {key} p-value {got['p_value']} vs scipy {p}")
        fit = ds["linear_fit"]
        if n >= 3 and np.any(xs != xs[0]):
            lr = stats.linregress(xs, ys)
            for k, v in [("slope", lr.slope), ("intercept", lr.intercept), ("r", lr.rvalue),
                         ("p_value", lr.pvalue), ("slope_stderr", lr.stderr),
                         ("intercept_stderr", lr.intercept_stderr)]:
                check(close(fit[k], v), f"{name}: linregress {k} {fit[k]} vs scipy {v}")
            ns = stats.linregress(xs / 100, ys).slope
            check(close(ds["normalized_slope"]["value"], ns),
                  f"{name}: normalized slope {ds['normalized_slope']['value']} vs linregress(x/100) {ns}")
        else:
            check(fit["slope"] is None and ds["normalized_slope"]["value"] is None
                  and ds["undefined"].get("normalized_slope"), f"{name}: undefined fit with a reason")
        # bootstrap, exactly as specified
        if n:
            ci = boot(xs, ys, None, seed, fnv1a(name), B)
            for k, key in enumerate(["pearson_r", "spearman_rho", "normalized_slope"]):
                lo, hi, used = ci[k]
                got = ds[key]["ci"]
                ok = (got is None and lo is None) or (got is not None and lo is not None and close(got[0], lo)
                                                      and close(got[1], hi))
                check(ok and ds[key]["resamples_used"] == used,
                      f"{name}: {key} bootstrap CI {got} ({ds[key]['resamples_used']}) vs re-implementation "
                      f"[{lo}, {hi}] ({used})")
                v = ds[key]["value"]
                if got is not None and v is not None and n >= 8:
                    check(got[0] <= v + 1e-12 and v <= got[1] + 1e-12, f"{name}: {key} CI contains the estimate")

    # intervals narrow with n (same trend, more models)
    w = [by[f"random{i}"]["pearson_r"]["ci"] for i in (3, 7)]
    check(w[1][1] - w[1][0] < w[0][1] - w[0][0], "the Pearson interval narrows from 8 to 60 models")

    # against the average of the other datasets: 4 datasets over 25 models; one model lacks a
    # dataset, one has a failed run (NaN), one has no upstream accuracy
    nm = 25
    up = rng.uniform(55, 85, nm)
    up[3] = np.nan
    skill = rng.normal(0, 1, nm)
    cross = {}
    for k, dn in enumerate(["cct", "aptos", "hpa", "cassava"]):
        v = 0.7 + 0.002 * (up - 70) * (k - 1) + 0.03 * skill + rng.normal(0, 0.02, nm)
        if dn == "hpa":
            v[7] = np.nan
        cross[dn] = v
    res2 = os.path.join(d, "cross.csv")
    with open(res2, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "dataset", "metric", "upstream", "value"])
        for dn, v in cross.items():
            for i in range(nm):
                if dn == "aptos" and i == 11:
                    continue  # never run
                w.writerow([f"net{i}", dn, "qwk" if dn == "aptos" else "accuracy", fmt(up[i]), fmt(v[i])])
    run("study-report", "--results", res2, "--out", os.path.join(d, "x"), "--seed", seed, "--boot", B)
    X = {ds["name"]: ds for ds in json.load(open(os.path.join(d, "x", "analysis.json")))["datasets"]}
    check(X["aptos"]["metric"] == "qwk" and X["cct"]["metric"] == "accuracy", "metric per dataset")
    for name in cross:
        v = X[name]["vs_other_datasets"]
        rows = []
        for i in range(nm):
            if name == "aptos" and i == 11:
                continue
            others = [cross[o][i] if not (o == "aptos" and i == 11) else math.nan for o in cross if o != name]
            if np.isfinite(up[i]) and np.isfinite(cross[name][i]) and all(np.isfinite(others)):
                rows.append((up[i], f"net{i}", cross[name][i], np.mean(others)))
        rows.sort()
        check([m["model"] for m in v["models"]] == [r[1] for r in rows], f"{name}: other-datasets models")
        check({e["model"] for e in v["excluded"]} == {"net3", "net7", "net11"} - ({"net11"} if name == "aptos" else set()),
              f"{name}: left-out models listed: {v['excluded']}")
        if name != "aptos":
            check(any(e["model"] == "net11" and "'aptos'" in e["reason"] for e in v["excluded"]),
                  f"{name}: the reason names the missing dataset")
        xu = np.array([r[0] for r in rows])
        yv = np.array([r[2] for r in rows])
        xo = np.array([r[3] for r in rows])
        check(all(close(m["other_average"], r[3]) for m, r in zip(v["models"], rows)), f"{name}: other averages")
        for key, ref in [("other_spearman_rho", stats.spearmanr(xo, yv)),
                         ("other_pearson_r", stats.pearsonr(xo, yv)),
                         ("upstream_spearman_rho", stats.spearmanr(xu, yv)),
                         ("upstream_pearson_r", stats.pearsonr(xu, yv))]:
            check(close(v[key]["value"], ref[0]) and close(v[key]["p_value"], ref[1]),
                  f"{name}: {key} {v[key]['value']} vs scipy {ref[0]}")
        check(close(v["spearman_difference"]["value"], stats.spearmanr(xo, yv)[0] - stats.spearmanr(xu, yv)[0]),
              f"{name}: Spearman difference")
        bu = boot(xu, yv, xo, seed, fnv1a(name) + 1, B)
        bo = boot(xo, yv, None, seed, fnv1a(name) + 1, B)
        for key, (lo, hi, _) in [("upstream_spearman_rho", bu[1]), ("upstream_pearson_r", bu[0]),
                                 ("other_spearman_rho", bo[1]), ("other_pearson_r", bo[0]),
                                 ("spearman_difference", bu[3])]:
            got = v[key]["ci"]
            check(got is not None and close(got[0], lo) and close(got[1], hi),
                  f"{name}: {key} CI {got} vs re-implementation [{lo}, {hi}]")

    # the CSV carries the JSON's numbers
    rows = list(csv.DictReader(open(os.path.join(d, "a", "analysis.csv"))))
    r0 = [r for r in rows if r["dataset"] == "random3" and r["statistic"] == "spearman_rho"][0]
    ds = by["random3"]
    check(float(r0["value"]) == ds["spearman_rho"]["value"] and float(r0["ci_low"]) == ds["spearman_rho"]["ci"][0],
          "analysis.csv has the JSON's values")
    rc = [r for r in rows if r["dataset"] == "const_x" and r["statistic"] == "pearson_r"][0]
    check(rc["value"] == "" and rc["reason"] != "", "analysis.csv: an undefined value is empty, with a reason")
    finish()


if __name__ == "__main__":
    main()
