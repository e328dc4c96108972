"""cvision eval on bad input: an unreadable image in the folder is one clear error line naming the
file (non-zero exit), or with --skip-bad is skipped and counted; a corrupt checkpoint sidecar, a
sidecar whose class list disagrees with the model and a transform giving 1 channel are one clear
line each. Run against the ASan build."""
import json
import os
import shutil

import numpy as np
import torch
import torchvision
from PIL import Image

import cvtest
from cvtest import check, run


def one_line_error(p, what, *needles):
    err = p.stderr.strip()
    ok = p.returncode not in (0,) and p.returncode < 128 and len(err.splitlines()) == 1 and \
        err.startswith("cvision: ") and all(n in err for n in needles)
    check(ok, f"{what}: rc {p.returncode}, {err!r}")


def main():
    d = cvtest.tmpdir()
    rng = np.random.default_rng(3)
    torch.manual_seed(0)
    w = os.path.join(d, "m.pth")
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), w)
    for c in ("a", "b"):
        os.makedirs(os.path.join(d, "f", c))
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                os.path.join(d, "f", c, f"{i}.png"))
    bad = os.path.join(d, "f", "b", "1.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nthis is not a png")
    spec = "folder:" + os.path.join(d, "f")

    p = run("eval", "-m", "resnet18", "-w", w, "--data", spec, "--batch", 4, check=False)
    one_line_error(p, "unreadable image", bad)

    out = os.path.join(d, "out")
    p = run("eval", "-m", "resnet18", "-w", w, "--data", spec, "--batch", 4, "--skip-bad", "--out", out,
            check=False)
    check(p.returncode == 0, f"--skip-bad succeeds ({p.stderr.strip()})")
    if p.returncode == 0:
        mj = json.load(open(os.path.join(out, "metrics.json")))
        check(mj["eval"]["skipped"] == 1 and mj["n_samples"] == 5, f"skipped 1, 5 evaluated: {mj['eval']}")
        rows = open(os.path.join(out, "predictions.csv")).read().splitlines()
        check(len(rows) == 6 and all(not r.startswith("4,") for r in rows), "the bad sample has no row")
        check("skipped 1 unreadable sample" in p.stderr, f"skip reported: {p.stderr.strip()}")

    # the first sample unreadable: the default transform cannot be chosen from it
    bad0 = os.path.join(d, "f", "a", "0.png")
    shutil.copy(bad, bad0)
    p = run("eval", "-m", "resnet18", "-w", w, "--data", spec, check=False)
    one_line_error(p, "unreadable first image", bad0)

    # sidecars
    st = os.path.join(d, "ck.safetensors")
    run("convert", w, st)
    js = os.path.join(d, "ck.json")
    with open(js, "w") as f:
        f.write('{"format": "cvision-checkpoint", "classes": [')
    p = run("eval", "-m", "resnet18", "-w", st, "--data", spec, "--skip-bad", check=False)
    one_line_error(p, "truncated sidecar", js, "JSON")
    json.dump({"format": "cvision-checkpoint", "classes": ["x", "y", "z"]}, open(js, "w"))
    p = run("eval", "-m", "resnet18", "-w", st, "--data", spec, "--skip-bad", check=False)
    one_line_error(p, "sidecar class list of the wrong length", js, "3")
    json.dump({"format": "cvision-checkpoint", "classes": ["x", 1]}, open(js, "w"))
    p = run("eval", "-m", "resnet18", "-w", st, "--data", spec, "--skip-bad", check=False)
    one_line_error(p, "sidecar class name not a string", js)

    p = run("eval", "-m", "resnet18", "-w", w, "--data", spec, "--skip-bad", "--transform",
            "grayscale(1),to_tensor", check=False)
    one_line_error(p, "1-channel transform", "channels")
    p = run("eval", "-m", "resnet18", "-w", w, "--data", spec, "--skip-bad", "--transform", "resize(abc)",
            check=False)
    one_line_error(p, "malformed transform", "abc")
    p = run("eval", "-m", "resnet18", "-w", w, "--data", spec, "--task", "multilabel", check=False)
    one_line_error(p, "multilabel task on single labels", "multilabel")
    p = run("eval", "-m", "resnet18", "-w", w, check=False)
    one_line_error(p, "no --data", "--data")
    shutil.rmtree(d)
    cvtest.finish()


if __name__ == "__main__":
    main()
