"""Detection metrics: `cvision metrics --task detection --json` against independent references.

* Box IoU (libcvision's cv_box_iou through ctypes) vs torchvision.ops.box_iou on random boxes,
  degenerate ones included (zero width/height, identical, disjoint, nested): 1e-6, NaN where
  torchvision gives NaN.
* COCO mAP/mAR vs a numpy implementation of pycocotools' COCOeval (evaluateImg, accumulate,
  summarize; written here from its published definition, as pycocotools is not packaged in
  Debian bookworm), and VOC AP (11-point and all-point) vs voc_eval.py's definition: 1e-9.
  Random cases in both input formats (CSV and COCO JSON) and the edge cases: no predictions, a
  class with no ground truth, a class only predicted, duplicate detections, tied scores, crowd
  boxes, images without objects, more than 100 detections in an image, boxes exactly at the
  32^2 / 96^2 area limits.
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision

CVISION = os.environ.get("CVISION", "cvision")
TOL = 1e-9
failures = []


def fail(case, msg):
    failures.append(f"{case}: {msg}")
    print(f"FAIL {case}: {msg}", flush=True)


# ---------------------------------------------------------------- box IoU through the library
def check_box_iou():
    lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(CVISION)), "libcvision.so"))
    dp = ctypes.POINTER(ctypes.c_double)
    lib.cv_box_iou.argtypes = [dp, ctypes.c_size_t, dp, ctypes.c_size_t, dp]
    lib.cv_box_iou.restype = None
    rng = np.random.default_rng(1)
    for case in range(30):
        n, m = rng.integers(0, 12, 2)
        xy = rng.uniform(-50, 50, (n + m, 2))
        wh = rng.uniform(0, 40, (n + m, 2))
        wh[rng.random((n + m, 2)) < 0.15] = 0  # degenerate: zero width or height
        boxes = np.concatenate([xy, xy + wh], 1)
        if n and m and case % 3 == 0:
            boxes[n] = boxes[0]  # identical
        if n and m and case % 5 == 0:
            boxes[n] = boxes[0]
            boxes[0, 2:] = boxes[0, :2]  # an empty box equal to another: 0/0
            boxes[n] = boxes[0]
        a, b = np.ascontiguousarray(boxes[:n]), np.ascontiguousarray(boxes[n:])
        out = np.zeros((n, m))
        lib.cv_box_iou(a.ctypes.data_as(dp), n, b.ctypes.data_as(dp), m, out.ctypes.data_as(dp))
        ref = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        if ref.shape != out.shape or not np.allclose(out, ref, rtol=0, atol=1e-6, equal_nan=True):
            fail(f"box_iou case {case}", f"max diff {np.nanmax(np.abs(out - ref)) if out.size else 0}")


# ---------------------------------------------------------------- COCOeval, from its definition
IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = [1, 10, 100]
AREA_RNG = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]


def bb_iou(d, g):
    """maskApi.c bbIou on corners: 0 without overlap; a crowd box divides by the detection."""
    w = min(d["x2"], g["x2"]) - max(d["x1"], g["x1"])
    if w <= 0:
        return 0.0
    h = min(d["y2"], g["y2"]) - max(d["y1"], g["y1"])
    if h <= 0:
        return 0.0
    i = w * h
    u = d["barea"] if g["iscrowd"] else d["barea"] + g["barea"] - i
    return i / u


def coco_eval(gts, dts, img_ids, cat_ids):
    """gts/dts: dicts with image_id, category_id, corners, barea, area, iscrowd / score."""
    G = {(i, c): [] for i in img_ids for c in cat_ids}
    D = {(i, c): [] for i in img_ids for c in cat_ids}
    for g in gts:
        g = dict(g, ignore=g["iscrowd"])
        G[g["image_id"], g["category_id"]].append(g)
    for k, d in enumerate(dts):
        D[d["image_id"], d["category_id"]].append(dict(d, id=k + 1))
    ious = {}
    for key in G:
        g, d = G[key], D[key]
        inds = np.argsort([-x["score"] for x in d], kind="mergesort")
        d = [d[i] for i in inds][:MAX_DETS[-1]]
        ious[key] = np.array([[bb_iou(x, y) for y in g] for x in d]).reshape(len(d), len(g))

    def evaluate_img(img, cat, a_rng, max_det):
        gt, dt = G[img, cat], D[img, cat]
        if not gt and not dt:
            return None
        ign = [1 if (g["ignore"] or g["area"] < a_rng[0] or g["area"] > a_rng[1]) else 0 for g in gt]
        gtind = np.argsort(ign, kind="mergesort")
        gt = [gt[i] for i in gtind]
        g_ig = np.array([ign[i] for i in gtind])
        dtind = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dt = [dt[i] for i in dtind[:max_det]]
        iscrowd = [int(o["iscrowd"]) for o in gt]
        iou = ious[img, cat][:, gtind] if len(ious[img, cat]) > 0 else ious[img, cat]
        T, ng, nd = len(IOU_THRS), len(gt), len(dt)
        gtm, dtm, dt_ig = np.zeros((T, ng)), np.zeros((T, nd)), np.zeros((T, nd))
        if len(iou):
            for ti, t in enumerate(IOU_THRS):
                for di, d in enumerate(dt):
                    best, m = min([t, 1 - 1e-10]), -1
                    for gi in range(ng):
                        if gtm[ti, gi] > 0 and not iscrowd[gi]:
                            continue
                        if m > -1 and g_ig[m] == 0 and g_ig[gi] == 1:
                            break
                        if iou[di, gi] < best:
                            continue
                        best, m = iou[di, gi], gi
                    if m == -1:
                        continue
                    dt_ig[ti, di] = g_ig[m]
                    dtm[ti, di] = m + 1  # any non-zero id marks the match
                    gtm[ti, m] = d["id"]
        a = np.array([d["area"] < a_rng[0] or d["area"] > a_rng[1] for d in dt]).reshape((1, nd))
        dt_ig = np.logical_or(dt_ig, np.logical_and(dtm == 0, np.repeat(a, T, 0)))
        return dict(dtMatches=dtm, dtScores=[d["score"] for d in dt], gtIgnore=g_ig, dtIgnore=dt_ig)

    T, R, K, A, M = len(IOU_THRS), len(REC_THRS), len(cat_ids), len(AREA_RNG), len(MAX_DETS)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for k, cat in enumerate(cat_ids):
        for a, rng in enumerate(AREA_RNG):
            E = [evaluate_img(i, cat, rng, MAX_DETS[-1]) for i in img_ids]
            E = [e for e in E if e is not None]
            if not E:
                continue
            for m, max_det in enumerate(MAX_DETS):
                scores = np.concatenate([e["dtScores"][:max_det] for e in E])
                inds = np.argsort(-scores, kind="mergesort")
                dtm = np.concatenate([e["dtMatches"][:, :max_det] for e in E], axis=1)[:, inds]
                dt_ig = np.concatenate([e["dtIgnore"][:, :max_det] for e in E], axis=1)[:, inds]
                g_ig = np.concatenate([e["gtIgnore"] for e in E])
                npig = np.count_nonzero(g_ig == 0)
                if npig == 0:
                    continue
                tps = np.logical_and(dtm, np.logical_not(dt_ig))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
                tp_sum = np.cumsum(tps, axis=1).astype(float)
                fp_sum = np.cumsum(fps, axis=1).astype(float)
                for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                    nd = len(tp)
                    rc = tp / npig
                    pr = (tp / (fp + tp + np.spacing(1))).tolist()
                    q = np.zeros((R,))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    for i in range(nd - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    for ri, pi in enumerate(np.searchsorted(rc, REC_THRS, side="left")):
                        if pi >= nd:
                            break
                        q[ri] = pr[pi]
                    precision[t, :, k, a, m] = q

    def summ(ap, iou_thr=None, area=0, max_det=2):
        s = precision[:, :, :, area, max_det] if ap else recall[:, :, area, max_det]
        if iou_thr is not None:
            s = s[np.where(iou_thr == IOU_THRS)[0]]
        s = s[s > -1]
        return float(np.mean(s)) if s.size else None

    out = {"map": summ(1), "map_50": summ(1, .5), "map_75": summ(1, .75), "map_small": summ(1, area=1),
           "map_medium": summ(1, area=2), "map_large": summ(1, area=3), "mar_1": summ(0, max_det=0),
           "mar_10": summ(0, max_det=1), "mar_100": summ(0), "mar_small": summ(0, area=1),
           "mar_medium": summ(0, area=2), "mar_large": summ(0, area=3)}
    per_ap, per_ar = [], []
    for k in range(K):
        p = precision[:, :, k, 0, 2]
        r = recall[:, k, 0, 2]
        per_ap.append(float(np.mean(p[p > -1])) if (p > -1).any() else None)
        per_ar.append(float(np.mean(r[r > -1])) if (r > -1).any() else None)
    out["map_per_class"], out["mar_100_per_class"] = per_ap, per_ar
    return out


# ---------------------------------------------------------------- VOC, voc_eval.py's definition
def voc_iou(d, g):
    iw = max(min(d["x2"], g["x2"]) - max(d["x1"], g["x1"]), 0.0)
    ih = max(min(d["y2"], g["y2"]) - max(d["y1"], g["y1"]), 0.0)
    uni = d["barea"] + g["barea"] - iw * ih
    return iw * ih / uni if uni > 0 else 0.0


def voc_ap(rec, prec, use_07):
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def voc_eval(gts, dts, img_ids, cat_ids):
    rank = {i: r for r, i in enumerate(img_ids)}
    ap07, ap = [], []
    for cat in cat_ids:
        R = {i: [g for g in gts if g["image_id"] == i and g["category_id"] == cat] for i in img_ids}
        det = {i: [False] * len(R[i]) for i in img_ids}
        npos = sum(not g["iscrowd"] for i in img_ids for g in R[i])
        ds = [d for d in dts if d["category_id"] == cat]
        # score descending; ties by image order, then file order (documented)
        ds = sorted(enumerate(ds), key=lambda x: (-x[1]["score"], rank[x[1]["image_id"]], x[0]))
        tp, fp = [], []
        for _, d in ds:
            gl = R[d["image_id"]]
            ov = [voc_iou(d, g) for g in gl]
            ovmax = max(ov) if ov else -np.inf
            jmax = int(np.argmax(ov)) if ov else -1
            if ovmax > 0.5:
                if not gl[jmax]["iscrowd"]:
                    if not det[d["image_id"]][jmax]:
                        tp.append(1.), fp.append(0.)
                        det[d["image_id"]][jmax] = True
                    else:
                        tp.append(0.), fp.append(1.)
            else:
                tp.append(0.), fp.append(1.)
        if npos == 0:
            ap07.append(None), ap.append(None)
            continue
        tp, fp = np.cumsum(np.array(tp)), np.cumsum(np.array(fp))
        rec = tp / float(npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap07.append(float(voc_ap(rec, prec, True)))
        ap.append(float(voc_ap(rec, prec, False)))

    def mean(v):
        v = [x for x in v if x is not None]
        return float(np.mean(v)) if v else None
    return {"voc07_map_50": mean(ap07), "voc_map_50": mean(ap), "voc07_ap_50_per_class": ap07,
            "voc_ap_50_per_class": ap}


# ---------------------------------------------------------------- cases and files
def sort_keys(keys):
    """cvision's order: numeric when every key is a canonical integer, else byte order."""
    keys = list(keys)
    import re
    if keys and all(re.fullmatch(r"-?(0|[1-9][0-9]{0,17})", str(k)) and str(k) != "-0" for k in keys):
        return sorted(keys, key=lambda k: int(k))
    return sorted(keys, key=lambda k: str(k).encode())


def write_case(d, fmt, images, gts, dts, categories=None):
    """Writes gt/pred files; returns the boxes as the reference sees them (corners as cvision
    reads them from that format)."""
    gp, pp = os.path.join(d, f"gt.{fmt}"), os.path.join(d, f"pred.{fmt}")
    ref_g, ref_d = [], []
    if fmt == "csv":
        with open(gp, "w") as f:
            f.write("image_id,class,x1,y1,x2,y2,iscrowd\n")
            for g in gts:
                x1, y1, x2, y2 = g["box"]
                f.write(f"{g['image_id']},{g['category_id']},{x1!r},{y1!r},{x2!r},{y2!r},{g['iscrowd']}\n")
            for i in images:  # images without objects are declared by an empty row
                if not any(g["image_id"] == i for g in gts):
                    f.write(f"{i},,,,,,\n")
        with open(pp, "w") as f:
            f.write("image_id,class,x1,y1,x2,y2,score\n")
            for p in dts:
                x1, y1, x2, y2 = p["box"]
                f.write(f"{p['image_id']},{p['category_id']},{x1!r},{y1!r},{x2!r},{y2!r},{p['score']!r}\n")
        for src, dst in ((gts, ref_g), (dts, ref_d)):
            for b in src:
                x1, y1, x2, y2 = b["box"]
                a = (x2 - x1) * (y2 - y1)
                dst.append(dict(b, image_id=str(b["image_id"]), category_id=str(b["category_id"]),
                                x1=x1, y1=y1, x2=x2, y2=y2, barea=a, area=a))
    else:
        anns = []
        for k, g in enumerate(gts):
            x1, y1, x2, y2 = g["box"]
            ann = {"id": k + 1, "image_id": g["image_id"], "category_id": g["category_id"],
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": g["iscrowd"]}
            if "seg_area" in g:
                ann["area"] = g["seg_area"]
            anns.append(ann)
        doc = {"images": [{"id": i} for i in images], "annotations": anns}
        if categories is not None:
            doc["categories"] = [{"id": c, "name": f"c{c}"} for c in categories]
        json.dump(doc, open(gp, "w"))
        res = [{"image_id": p["image_id"], "category_id": p["category_id"],
                "bbox": [p["box"][0], p["box"][1], p["box"][2] - p["box"][0], p["box"][3] - p["box"][1]],
                "score": p["score"]} for p in dts]
        json.dump(res, open(pp, "w"))
        for src, dst, key in ((anns, ref_g, "annotations"), (res, ref_d, "results")):
            for b, orig in zip(src, gts if key == "annotations" else dts):
                x, y, w, h = b["bbox"]
                dst.append(dict(orig, image_id=str(b["image_id"]), category_id=str(b["category_id"]),
                                x1=x, y1=y, x2=x + w, y2=y + h, barea=w * h,
                                area=b.get("area", w * h)))
    return gp, pp, ref_g, ref_d


def compare(case, got, ref, classes):
    for key, want in ref.items():
        if key not in got:
            fail(case, f"missing {key}")
            continue
        g = got[key]
        if isinstance(want, list):
            if len(g) != len(want):
                fail(case, f"{key}: {len(g)} values, want {len(want)}")
                continue
            for c, (x, y) in enumerate(zip(g, want)):
                if (x is None) != (y is None) or (x is not None and abs(x - y) > TOL):
                    fail(case, f"{key}[{classes[c]}] = {x}, want {y}")
        elif (g is None) != (want is None) or (g is not None and abs(g - want) > TOL):
            fail(case, f"{key} = {g}, want {want}")


def run_case(case, fmt, images, gts, dts, categories=None):
    with tempfile.TemporaryDirectory() as d:
        gp, pp, rg, rd = write_case(d, fmt, images, gts, dts, categories)
        p = subprocess.run([CVISION, "metrics", "--task", "detection", "--gt", gp, "--pred", pp,
                            "--json"], capture_output=True, text=True)
        if p.returncode:
            fail(case, f"cvision failed: {p.stderr.strip()}")
            return None
        got = json.loads(p.stdout)
    img_ids = sort_keys(str(i) for i in images)
    cats = set(g["category_id"] for g in rg) | set(x["category_id"] for x in rd)
    if categories is not None:
        cats |= set(str(c) for c in categories)
    cat_ids = sort_keys(cats)
    if got.get("class_names", []) != cat_ids:
        fail(case, f"classes {got.get('class_names')} != {cat_ids}")
        return got
    ref = coco_eval(rg, rd, img_ids, cat_ids)
    ref.update(voc_eval(rg, rd, img_ids, cat_ids))
    compare(case, got["metrics"], ref, cat_ids)
    if got["n_samples"] != len(images):
        fail(case, f"n_samples {got['n_samples']} != {len(images)}")
    return got


def random_case(rng, n_img, n_cls, int_ids, ties, crowd, max_per_img=8, dets_per_gt=(0, 3)):
    images = list(rng.permutation(1000)[:n_img] + 1) if int_ids else [f"img{j}" for j in range(n_img)]
    images = [int(i) for i in images] if int_ids else images
    classes = [int(c) for c in rng.permutation(90)[:n_cls] + 1] if int_ids else \
        [f"cls_{chr(97 + c)}" for c in range(n_cls)]
    gts, dts = [], []
    for i in images:
        for _ in range(rng.integers(0, max_per_img + 1)):
            c = classes[rng.integers(n_cls)]
            s = float(rng.choice([10, 25, 32, 50, 96, 150]) * rng.uniform(0.6, 1.5))
            x, y = float(rng.uniform(0, 300)), float(rng.uniform(0, 300))
            w, h = s * float(rng.uniform(0.5, 2)), s * float(rng.uniform(0.5, 2))
            box = (x, y, x + w, y + h)
            gts.append({"image_id": i, "category_id": c, "box": box,
                        "iscrowd": int(crowd and rng.random() < 0.1)})
            for _ in range(rng.integers(*dets_per_gt)):  # jittered copies: matches and duplicates
                j = rng.normal(0, 0.12 * s, 4)
                b = (x + j[0], y + j[1], x + w + abs(j[2]) + j[0], y + h + abs(j[3]) + j[1])
                cc = c if rng.random() < 0.9 else classes[rng.integers(n_cls)]
                dts.append({"image_id": i, "category_id": cc, "box": b, "score": 0.0})
        for _ in range(rng.integers(0, 4)):  # false positives
            x, y, s = float(rng.uniform(0, 300)), float(rng.uniform(0, 300)), float(rng.uniform(5, 120))
            dts.append({"image_id": i, "category_id": classes[rng.integers(n_cls)],
                        "box": (x, y, x + s, y + s * float(rng.uniform(0.5, 2))), "score": 0.0})
    order = rng.permutation(len(dts))
    dts = [dts[k] for k in order]
    for p in dts:
        p["score"] = float(np.round(rng.random(), 1)) if ties else float(rng.random())
    return images, gts, dts


def main():
    check_box_iou()
    rng = np.random.default_rng(7)
    for n in range(24):
        fmt = "json" if n % 2 or n % 6 == 5 else "csv"
        images, gts, dts = random_case(rng, n_img=int(rng.integers(1, 9)), n_cls=int(rng.integers(1, 5)),
                                       int_ids=fmt == "json" or n % 4 == 0, ties=n % 3 == 0, crowd=n % 5 == 1)
        if n % 6 == 5:  # COCO segment areas that differ from the box areas
            for g in gts:
                g["seg_area"] = float((g["box"][2] - g["box"][0]) * (g["box"][3] - g["box"][1]) * rng.uniform(0.3, 1))
        run_case(f"random {n} ({fmt}, {len(gts)} gt, {len(dts)} dt)", fmt, images, gts, dts)

    # edge cases
    box = lambda x, y, w, h: (float(x), float(y), float(x + w), float(y + h))
    g1 = [{"image_id": 1, "category_id": 1, "box": box(10, 10, 40, 40), "iscrowd": 0},
          {"image_id": 2, "category_id": 2, "box": box(0, 0, 100, 100), "iscrowd": 0}]
    for fmt in ("csv", "json"):
        run_case(f"no predictions ({fmt})", fmt, [1, 2], g1, [])
        run_case(f"class only predicted ({fmt})", fmt, [1, 2], g1,
                 [{"image_id": 1, "category_id": 3, "box": box(10, 10, 40, 40), "score": 0.9},
                  {"image_id": 1, "category_id": 1, "box": box(12, 10, 40, 40), "score": 0.5}])
        run_case(f"duplicates and ties ({fmt})", fmt, [1, 2, 3], g1,
                 [{"image_id": i, "category_id": 1, "box": box(10 + k, 10, 40, 40), "score": 0.5}
                  for i in (1, 3) for k in range(3)] +
                 [{"image_id": 2, "category_id": 2, "box": box(0, 0, 100, 100), "score": 0.5}])
        run_case(f"no ground truth at all ({fmt})", fmt, [1, 2], [],
                 [{"image_id": 1, "category_id": 1, "box": box(1, 1, 5, 5), "score": 0.3}])
        # exactly at the area limits 32^2 and 96^2 (ranges are inclusive on both sides)
        lim = [{"image_id": 1, "category_id": 1, "box": box(0, 0, 32, 32), "iscrowd": 0},
               {"image_id": 1, "category_id": 1, "box": box(100, 100, 96, 96), "iscrowd": 0},
               {"image_id": 1, "category_id": 1, "box": box(300, 0, 31, 33), "iscrowd": 0}]
        run_case(f"area limits ({fmt})", fmt, [1], lim,
                 [dict(g, score=0.9 - 0.1 * k) for k, g in enumerate(lim)] +
                 [{"image_id": 1, "category_id": 1, "box": box(400, 400, 32, 32), "score": 0.95}])
        crowd = [{"image_id": 1, "category_id": 1, "box": box(0, 0, 200, 200), "iscrowd": 1},
                 {"image_id": 1, "category_id": 1, "box": box(10, 10, 30, 30), "iscrowd": 0}]
        run_case(f"crowd ({fmt})", fmt, [1], crowd,
                 [{"image_id": 1, "category_id": 1, "box": box(50 + 5 * k, 50, 20, 20), "score": 0.1 * k}
                  for k in range(5)] + [{"image_id": 1, "category_id": 1, "box": box(11, 10, 30, 30), "score": 0.3}])
    # more than 100 detections in one image (maxDets truncation), with declared categories
    many = [{"image_id": 5, "category_id": 1, "box": box(3 * k, 0, 20, 20), "iscrowd": 0} for k in range(60)]
    dts = [{"image_id": 5, "category_id": 1, "box": box(3 * (k % 60) + rng.uniform(-2, 2), 0, 20, 20),
            "score": float(rng.random())} for k in range(150)]
    run_case("150 detections in an image", "json", [5, 6], many, dts, categories=[1, 2, 7])
    run_case("150 detections in an image (csv)", "csv", [5, 6], many, dts)

    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        sys.exit(1)
    print("detection metrics: all cases agree")


if __name__ == "__main__":
    main()
