"""Segmentation metrics: `cvision metrics --task segmentation --json` against torchvision's
references/segmentation ConfusionMatrix (re-implemented in numpy, as its update()/compute() are
written) and sklearn.metrics.jaccard_score / accuracy_score / confusion_matrix.

Exact: the confusion matrix, pixel accuracy, and each class's IoU and accuracy (same integer
counts, one division). Means: 1e-12 (summation order). Label maps are written as palette PNGs,
8- and 16-bit gray PNGs and .npy arrays of several integer dtypes and shapes, paired from two
directories (mixed extensions), two list files, or two single files; pixels at the ignore index
are left out; a class absent from both ground truth and prediction is null and left out of the
means (where torchvision's printed mean IoU would be NaN).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from sklearn import metrics as skm

CVISION = os.environ.get("CVISION", "cvision")
failures = []


def fail(case, msg):
    failures.append(f"{case}: {msg}")
    print(f"FAIL {case}: {msg}", flush=True)


def save(path, a, kind):
    if kind == "palette":
        im = Image.fromarray(a.astype(np.uint8), mode="P")
        im.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
        im.save(path)
    elif kind == "gray":
        Image.fromarray(a.astype(np.uint8), mode="L").save(path)
    elif kind == "gray16":
        Image.fromarray(a.astype(np.uint16)).save(path)
    elif kind == "npy64":
        np.save(path, a.astype(np.int64))
    elif kind == "npy_u8_chw":
        np.save(path, a.astype(np.uint8)[None])
    elif kind == "npy32":
        np.save(path, a.astype(np.int32))
    # sanity: what PIL / numpy read back is the array (cvision must read the same)
    back = np.load(path) if path.endswith(".npy") else np.array(Image.open(path))
    assert np.array_equal(back.reshape(a.shape).astype(np.int64), a), kind


EXT = {"palette": ".png", "gray": ".png", "gray16": ".png", "npy64": ".npy", "npy_u8_chw": ".npy",
       "npy32": ".npy"}


def torchvision_confmat(pairs, n, ignore):
    """references/segmentation/utils.py ConfusionMatrix.update/compute; pixels at `ignore` are
    masked first (torchvision relies on the ignore index being >= n)."""
    mat = np.zeros((n, n), dtype=np.int64)
    for a, b in pairs:
        a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
        keep = a != ignore
        a, b = a[keep], b[keep]
        k = (a >= 0) & (a < n)
        inds = n * a[k] + b[k]
        mat += np.bincount(inds, minlength=n ** 2).reshape(n, n)
    h = mat.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_global = np.diag(h).sum() / h.sum()
        acc = np.diag(h) / h.sum(1)
        iu = np.diag(h) / (h.sum(1) + h.sum(0) - np.diag(h))
    return mat, acc_global, acc, iu


def run(case, gt, pred, pairs, n, args=(), ignore=255):
    p = subprocess.run([CVISION, "metrics", "--task", "segmentation", "--gt", gt, "--pred", pred,
                        "--json", *args], capture_output=True, text=True)
    if p.returncode:
        fail(case, f"cvision failed: {p.stderr.strip()}")
        return
    got = json.loads(p.stdout)
    m = got["metrics"]
    mat, acc_global, acc, iu = torchvision_confmat(pairs, n, ignore)
    if got["num_classes"] != n:
        fail(case, f"num_classes {got['num_classes']} != {n}")
        return
    if m["confusion_matrix"] != mat.tolist():
        fail(case, "confusion matrix differs")
    if m["pixel_accuracy"] != acc_global:
        fail(case, f"pixel_accuracy {m['pixel_accuracy']} != {acc_global}")
    for name, ref in (("iou.per_class", iu), ("accuracy.per_class", acc)):
        want = [None if np.isnan(x) else float(x) for x in ref]
        if m[name] != want:
            fail(case, f"{name} {m[name]} != {want}")
    if m["support.per_class"] != mat.sum(1).tolist():
        fail(case, "support.per_class differs")
    for name, ref in (("mean_iou", iu), ("mean_accuracy", acc)):
        want = float(np.nanmean(ref))
        if abs(m[name] - want) > 1e-12:
            fail(case, f"{name} {m[name]} != {want}")
    # scikit-learn on the flattened non-ignored pixels
    y = np.concatenate([a.ravel() for a, _ in pairs]).astype(np.int64)
    yp = np.concatenate([b.ravel() for _, b in pairs]).astype(np.int64)
    keep = y != ignore
    y, yp = y[keep], yp[keep]
    present = [c for c in range(n) if not np.isnan(iu[c])]
    jac = skm.jaccard_score(y, yp, labels=present, average=None, zero_division=0)
    if [m["iou.per_class"][c] for c in present] != jac.tolist():
        fail(case, f"iou != sklearn jaccard_score {jac.tolist()}")
    macro = skm.jaccard_score(y, yp, labels=present, average="macro", zero_division=0)
    if abs(m["mean_iou"] - macro) > 1e-12:
        fail(case, f"mean_iou {m['mean_iou']} != sklearn macro jaccard {macro}")
    if m["pixel_accuracy"] != skm.accuracy_score(y, yp):
        fail(case, "pixel_accuracy != sklearn accuracy_score")
    if not np.array_equal(np.array(m["confusion_matrix"]), skm.confusion_matrix(y, yp, labels=range(n))):
        fail(case, "confusion matrix != sklearn confusion_matrix")
    ins = got["inputs"]
    if ins["pixels"] != int(keep.sum()) or ins["ignored_pixels"] != int((~keep).sum()) or \
            ins["label_maps"] != len(pairs):
        fail(case, f"inputs {ins}")


def random_maps(rng, k, n_maps, ignore=255, p_ignore=0.1, accuracy=0.7, classes=None):
    classes = np.arange(k) if classes is None else np.asarray(classes)
    pairs = []
    for _ in range(n_maps):
        h, w = (int(x) for x in rng.integers(5, 60, 2))
        gt = classes[rng.integers(0, len(classes), (h, w))]
        pred = np.where(rng.random((h, w)) < accuracy, gt, classes[rng.integers(0, len(classes), (h, w))])
        gt = np.where(rng.random((h, w)) < p_ignore, ignore, gt)
        pairs.append((gt, pred))
    return pairs


def main():
    rng = np.random.default_rng(3)
    kinds = list(EXT)
    with tempfile.TemporaryDirectory() as d:
        # two directories, paired by name, gt and prediction in different formats
        for case in range(6):
            k = int(rng.integers(2, 9))
            pairs = random_maps(rng, k, int(rng.integers(1, 6)))
            gd, pd = os.path.join(d, f"gt{case}"), os.path.join(d, f"pr{case}")
            os.makedirs(gd), os.makedirs(pd)
            for i, (g, p) in enumerate(pairs):
                gk = kinds[(case + i) % len(kinds)]
                pk = kinds[(case + 2 * i + 1) % len(kinds)]
                save(os.path.join(gd, f"m{i:03d}{EXT[gk]}"), g, gk)
                save(os.path.join(pd, f"m{i:03d}{EXT[pk]}"), p, pk)
            run(f"dirs {case} (K={k})", gd, pd, pairs, k, ["--classes", str(k)])
            run(f"dirs {case} inferred K", gd, pd, pairs,
                int(max(max(g[g != 255].max(initial=0), p.max()) for g, p in pairs)) + 1)
        # list files with relative paths; a class absent from both ground truth and predictions
        pairs = random_maps(rng, 6, 4, classes=[0, 1, 2, 4, 5])
        ld = os.path.join(d, "lists")
        os.makedirs(os.path.join(ld, "a")), os.makedirs(os.path.join(ld, "b"))
        for i, (g, p) in enumerate(pairs):
            save(os.path.join(ld, "a", f"{i}.png"), g, "palette")
            save(os.path.join(ld, "b", f"{i}.npy"), p, "npy32")
        with open(os.path.join(ld, "gt.txt"), "w") as f:
            f.write("".join(f"a/{i}.png\n" for i in range(len(pairs))) + "\n")
        with open(os.path.join(ld, "pred.txt"), "w") as f:
            f.write("".join(f"b/{i}.npy\r\n" for i in range(len(pairs))))
        run("lists, class 3 absent, K=7", os.path.join(ld, "gt.txt"), os.path.join(ld, "pred.txt"),
            pairs, 7, ["--classes", "7"])
        # a single pair of files; perfect prediction; another ignore index
        g = random_maps(rng, 4, 1, p_ignore=0)[0][0]
        save(os.path.join(d, "one_gt.png"), g, "gray")
        save(os.path.join(d, "one_pred.npy"), g, "npy64")
        run("single pair, perfect", os.path.join(d, "one_gt.png"), os.path.join(d, "one_pred.npy"),
            [(g, g)], int(g.max()) + 1)
        pairs = random_maps(rng, 5, 1, ignore=0, classes=[1, 2, 3, 4])
        save(os.path.join(d, "ig_gt.png"), pairs[0][0], "gray16")
        save(os.path.join(d, "ig_pred.png"), pairs[0][1], "palette")
        run("--ignore 0", os.path.join(d, "ig_gt.png"), os.path.join(d, "ig_pred.png"), pairs, 5,
            ["--ignore", "0", "--classes", "5"], ignore=0)
    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        sys.exit(1)
    print("segmentation metrics: all cases agree")


if __name__ == "__main__":
    main()
