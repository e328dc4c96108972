"""Hostile inputs to `cvision metrics --task detection|segmentation`: each must fail with exactly
one line on stderr ("cvision: ...") that names the offending file (and the line or JSON entry
where one applies), exit non-zero, and not trip ASan/UBSan (this test runs against the
sanitizer build)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

CVISION = os.environ.get("CVISION", "cvision")
GH = "image_id,class,x1,y1,x2,y2\n"
PH = "image_id,class,x1,y1,x2,y2,score\n"
G_OK = GH + "a,cat,0,0,10,10\nb,dog,5,5,20,20\n"
J_GT = '{"images":[{"id":1},{"id":2}],"annotations":[{"image_id":1,"category_id":1,"bbox":[0,0,5,5]}]}'

# (name, gt content, pred content, file the message must name ("gt"/"pred"), text it must contain)
DET = [
    ("short row", G_OK, PH + "a,cat,0,0,10,10,0.5\na,cat,0,0,10\n", "pred", ":3: expected 7 fields"),
    ("long row", GH + "a,cat,0,0,1,1,7\n", PH, "gt", ":2: expected 6 fields as in the header, found more"),
    ("text coordinate", G_OK, PH + "a,cat,abc,0,10,10,0.5\n", "pred", ":2: column 'x1': 'abc' is not a number"),
    ("empty coordinate", GH + "a,cat,0,,1,1\n", PH, "gt", ":2: column 'y1': '' is not a number"),
    ("negative width", GH + "a,cat,10,0,5,10\n", PH, "gt", ":2: negative width -5 (x2 < x1)"),
    ("negative height", G_OK, PH + "b,dog,0,9,1,3,0.5\n", "pred", ":2: negative height -6 (y2 < y1)"),
    ("nan coordinate", G_OK, PH + "a,cat,nan,0,1,1,0.5\n", "pred", ":2: x1 is not a finite number"),
    ("inf score", G_OK, PH + "a,cat,0,0,1,1,inf\n", "pred", ":2: score is not a finite number"),
    ("text score", G_OK, PH + "a,cat,0,0,1,1,high\n", "pred", ":2: column 'score': 'high' is not a number"),
    ("no score column", G_OK, GH + "a,cat,0,0,1,1\n", "pred", ":1: no 'score' column"),
    ("no x2 column", "image_id,class,x1,y1,y2\n", PH, "gt", ":1: no 'x2' column"),
    ("duplicate column", "image_id,class,x1,y1,x2,y2,x1\n", PH, "gt", ":1: column 'x1' appears twice"),
    ("bad iscrowd", GH[:-1] + ",iscrowd\na,cat,0,0,1,1,2\n", PH, "gt", ":2: column 'iscrowd': expected 0 or 1"),
    ("empty image id", G_OK, PH + ",cat,0,0,1,1,0.5\n", "pred", ":2: empty image_id"),
    ("empty class", G_OK, PH + "a,,0,0,1,1,0.5\n", "pred", ":2: empty class"),
    ("unknown image", G_OK, PH + "a,cat,0,0,1,1,0.5\nzz,cat,0,0,1,1,0.5\n", "pred",
     ":3: image 'zz' is not in the ground truth"),
    ("empty gt", "", PH, "gt", "empty file"),
    ("blank pred", G_OK, " \n\n", "pred", "empty file"),
    ("invalid json", J_GT, '[{"image_id": 1,\n "bbox": [0, 0,', "pred", ":2: not valid JSON"),
    ("json not a list", J_GT, '{"a": 1}', "pred", "expected a list of results"),
    ("json gt without annotations", '{"images": []}', "[]", "gt", 'an object with an "annotations" list'),
    ("json bbox of 3", J_GT, '[{"image_id":1,"category_id":1,"bbox":[0,0,5],"score":0.5}]', "pred",
     'results[0]: "bbox" must be [x, y, width, height]'),
    ("json negative width", J_GT, '[{"image_id":1,"category_id":1,"bbox":[0,0,5,5],"score":1},'
     '{"image_id":2,"category_id":1,"bbox":[0,0,-5,5],"score":0.5}]', "pred", "results[1]: negative width -5"),
    ("json no score", J_GT, '[{"image_id":1,"category_id":1,"bbox":[0,0,5,5]}]', "pred", 'results[0]: no numeric "score"'),
    ("json unknown image", J_GT, '[{"image_id":3,"category_id":1,"bbox":[0,0,5,5],"score":0.5}]', "pred",
     "results[0]: image '3' is not in the ground truth"),
    ("json float image id", J_GT, '[{"image_id":1.5,"category_id":1,"bbox":[0,0,5,5],"score":0.5}]', "pred",
     'results[0]: no integer or string "image_id"'),
    ("json annotation off the image list", '{"images":[{"id":1}],"annotations":[{"image_id":2,'
     '"category_id":1,"bbox":[0,0,1,1]}]}', "[]", "gt", 'annotations[0]: image_id 2 is not in "images"'),
    ("json bad iscrowd", '{"annotations":[{"image_id":2,"category_id":1,"bbox":[0,0,1,1],"iscrowd":3}]}',
     "[]", "gt", '"iscrowd" must be 0 or 1'),
    ("json negative area", '{"annotations":[{"image_id":2,"category_id":1,"bbox":[0,0,1,1],"area":-1}]}',
     "[]", "gt", "annotations[0]: negative area -1"),
    ("binary bytes", G_OK, "image_id,class,x1,y1,x2,y2,score\n\x00\x01,\x02,\x03,1,1,1,1\n", "pred", ":2: column 'x1'"),
]


def one_line(p, path, want):
    lines = p.stderr.strip().splitlines()
    return (p.returncode != 0 and p.returncode < 128 and len(lines) == 1 and
            lines[0].startswith("cvision: ") and path in lines[0] and want in lines[0])


def seg_cases(d):
    """(name, gt path, pred path, extra args, path named, text)"""
    def png(name, a, mode):
        p = os.path.join(d, name)
        Image.fromarray(a, mode=mode).save(p)
        return p

    def npy(name, a):
        p = os.path.join(d, name)
        np.save(p, a)
        return p
    g = png("g.png", np.zeros((4, 3), np.uint8), "L")
    rgb = png("rgb.png", np.zeros((4, 3, 3), np.uint8), "RGB")
    la = png("la.png", np.zeros((4, 3, 2), np.uint8), "LA")
    small = npy("small.npy", np.zeros((3, 3), np.int64))
    flt = npy("float.npy", np.zeros((4, 3), np.float32))
    big = npy("big.npy", np.full((4, 3), 2 ** 40, np.int64))
    cube = npy("cube.npy", np.zeros((2, 4, 3), np.int64))
    neg = npy("neg.npy", np.full((4, 3), -2, np.int32))
    seven = npy("seven.npy", np.full((4, 3), 7, np.uint8))
    trunc = os.path.join(d, "trunc.png")
    open(trunc, "wb").write(open(g, "rb").read()[:40])
    junk = os.path.join(d, "junk.png")
    open(junk, "wb").write(b"GIF89a....")
    gd, pd = os.path.join(d, "gd"), os.path.join(d, "pd")
    os.makedirs(gd), os.makedirs(pd)
    for n in ("x.png", "y.png"):
        png(os.path.join("gd", n), np.zeros((4, 3), np.uint8), "L")
    png(os.path.join("pd", "x.png"), np.zeros((4, 3), np.uint8), "L")
    pd2 = os.path.join(d, "pd2")
    os.makedirs(pd2)
    for n in ("x.npy", "y.npy", "z.npy"):
        npy(os.path.join("pd2", n), np.zeros((4, 3), np.int64))
    l1, l2 = os.path.join(d, "l1.txt"), os.path.join(d, "l2.txt")
    open(l1, "w").write("g.png\ng.png\n")
    open(l2, "w").write("g.png\n")
    return [
        ("rgb label map", g, rgb, [], rgb, "a colour PNG is not a label map"),
        ("gray+alpha label map", la, g, [], la, "a gray+alpha PNG is not a label map"),
        ("size mismatch", g, small, [], g, "3x4 (width x height), but the prediction"),
        ("float npy", flt, g, [], flt, "must hold integers"),
        ("int64 beyond int32", g, big, [], big, "is not a class index"),
        ("3-d npy", cube, g, [], cube, "must be a non-empty (H, W) or (1, H, W) array"),
        ("negative class", neg, g, ["--ignore", "255"], neg, "ground-truth class -2 is negative"),
        ("class outside --classes", g, seven, ["--classes", "3"], g, "predicted class 7 is outside 0..2"),
        ("truncated png", trunc, g, [], trunc, "corrupt PNG"),
        ("not an image", junk, g, [], junk, "not a PNG or .npy label map"),
        ("missing prediction", gd, pd, [], pd, "no prediction for"),
        ("extra prediction", gd, pd2, [], "z.npy", "no ground truth for this prediction"),
        ("lists of different lengths", l1, l2, [], l1, "lists 2 label maps but"),
        ("missing file", os.path.join(d, "nope.png"), g, [], "nope.png", "cannot open"),
    ]


def main():
    failures = []
    with tempfile.TemporaryDirectory() as d:
        for name, gtext, ptext, which, want in DET:
            gp = os.path.join(d, "gt.json" if gtext.startswith("{") else "gt.csv")
            pp = os.path.join(d, "pred.json" if ptext.lstrip().startswith(("[", "{")) else "pred.csv")
            open(gp, "w").write(gtext)
            open(pp, "w").write(ptext)
            p = subprocess.run([CVISION, "metrics", "--task", "detection", "--gt", gp, "--pred", pp],
                               capture_output=True, text=True, errors="replace")
            path = gp if which == "gt" else pp
            if not one_line(p, path, want):
                failures.append(f"detection {name}: rc {p.returncode}, stderr {p.stderr.strip()!r}, "
                                f"wanted one line with {path!r} and {want!r}")
        for name, g, pr, args, path, want in seg_cases(d):
            p = subprocess.run([CVISION, "metrics", "--task", "segmentation", "--gt", g, "--pred", pr, *args],
                               capture_output=True, text=True, errors="replace")
            if not one_line(p, path, want):
                failures.append(f"segmentation {name}: rc {p.returncode}, stderr {p.stderr.strip()!r}, "
                                f"wanted one line with {path!r} and {want!r}")
    for f in failures:
        print("FAIL", f)
    if failures:
        sys.exit(1)
    print(f"{len(DET)} detection and segmentation bad inputs: one clear line each")


if __name__ == "__main__":
    main()
