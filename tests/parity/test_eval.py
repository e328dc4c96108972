"""cvision eval against PyTorch: a resnet18(num_classes=3) with randomised batch norm, saved by
torch.save, evaluated on an ImageFolder of PNGs and on an npy dataset. The predictions CSV's
probabilities must equal softmax(model(x)) on torchvision's preprocessing of the same images
(max|diff| <= 1e-4), and metrics.json must equal `cvision metrics` on that CSV exactly (every key
but the eval-only "eval" and "class_names"). Also: the checkpoint's JSON sidecar (class names and
eval transform), the default transforms, bootstrap CIs."""
import csv
import json
import os
import shutil

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

import cvtest
from cvtest import check, run

TOL = 1e-4
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_model(path):
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=3)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
        m.fc.weight.mul_(0.05)  # logits of order 1: probabilities away from 0 and 1
    m.eval()
    torch.save(m.state_dict(), path)
    return m


def read_pred(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], rows[1:]
    K = sum(1 for h in head if h.startswith("score_"))
    check(head == ["index", "label"] + [f"score_{k}" for k in range(K)], f"{path}: header {head}")
    idx = np.array([int(r[0]) for r in rows])
    lab = np.array([int(r[1]) for r in rows])
    P = np.array([[float(v) for v in r[2:]] for r in rows])
    return idx, lab, P


def eval_run(name, d, *args):
    out = os.path.join(d, name)
    p = run("eval", *args, "--out", out, "--batch", 5, "--workers", 2)
    return out, p.stdout


def same_as_metrics_cli(name, out, task, *extra):
    mine = json.load(open(os.path.join(out, "metrics.json")))
    theirs = json.loads(run("metrics", "--pred", os.path.join(out, "predictions.csv"), "--task", task,
                            "--json", *extra).stdout)
    for k in ("eval", "class_names"):
        mine.pop(k, None)
    check(mine == theirs, f"{name}: metrics.json equals `cvision metrics` on predictions.csv")
    check(os.path.getsize(os.path.join(out, "report.html")) > 1000, f"{name}: report.html written")


def compare_probs(name, model, xs, labels, out):
    with torch.no_grad():
        want = torch.softmax(model(torch.stack(xs)), 1).numpy()
    idx, lab, P = read_pred(os.path.join(out, "predictions.csv"))
    check(list(idx) == list(range(len(xs))), f"{name}: rows in dataset order")
    check(list(lab) == list(labels), f"{name}: labels")
    err = np.abs(P - want).max() if P.shape == want.shape else np.inf
    check(err <= TOL, f"{name}: probabilities vs PyTorch max|diff| {err:.2e} <= {TOL}")
    check(want.min() > 0.01, f"{name}: the probabilities are not saturated (min {want.min():.3f})")


def main():
    d = cvtest.tmpdir()
    rng = np.random.default_rng(1)
    model = make_model(os.path.join(d, "model.pth"))

    # ImageFolder: 3 classes, 32x32 RGB PNGs (torchvision's order: classes sorted, files sorted)
    classes = ["cat", "dog", "fish"]
    files, labels = [], []
    for c, cls in enumerate(classes):
        os.makedirs(os.path.join(d, "folder", cls))
        for i in range(4):
            f = os.path.join(d, "folder", cls, f"img{i}.png")
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(f)
            files.append(f)
            labels.append(c)
    pil = [Image.open(f).convert("RGB") for f in files]
    spec = "folder:" + os.path.join(d, "folder")
    wpth = os.path.join(d, "model.pth")

    # default transform for small images: native size, ImageNet normalisation
    tv = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    out, text = eval_run("folder_default", d, "-m", "resnet18", "-w", wpth, "--data", spec)
    compare_probs("folder default", model, [tv(im) for im in pil], labels, out)
    same_as_metrics_cli("folder default", out, "multiclass")
    mj = json.load(open(os.path.join(out, "metrics.json")))
    check(mj.get("class_names") == classes, f"folder: class names in metrics.json {mj.get('class_names')}")
    check(mj["eval"]["transform"] == "to_tensor,normalize(imagenet)", f"default transform {mj['eval']['transform']}")
    check(all(c in text for c in classes), "folder: class names in the text summary")
    check(all(c in open(os.path.join(out, "report.html")).read() for c in classes),
          "folder: class names in the HTML report")

    # an explicit pipeline, bootstrap CIs (same seed: the same intervals as `cvision metrics`)
    tv = T.Compose([T.Resize(40), T.CenterCrop(30), T.ToTensor(), T.Normalize(MEAN, STD)])
    out, _ = eval_run("folder_tf", d, "-m", "resnet18", "-w", wpth, "--data", spec, "--transform",
                      "resize(40),center_crop(30),to_tensor,normalize(imagenet)", "--ci", 50, "--seed", 7)
    compare_probs("folder resize/crop", model, [tv(im) for im in pil], labels, out)
    same_as_metrics_cli("folder resize/crop + CIs", out, "multiclass", "--ci", 50, "--seed", 7)
    check("confidence_intervals" in json.load(open(os.path.join(out, "metrics.json"))), "CIs present")

    # --json prints the same document (same batch size: Winograd convolutions round differently
    # for different batch sizes, in the last bits)
    p = run("eval", "-m", "resnet18", "-w", wpth, "--data", spec, "--json", "--batch", 5)
    check(json.loads(p.stdout)["metrics"] == mj["metrics"], "--json prints the metrics")

    # npy dataset: gray 28x28 uint8 (MNIST-like) -> grayscale(3), native size
    n = 11
    X = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    Y = np.arange(n) % 3
    np.save(os.path.join(d, "X.npy"), X)
    np.save(os.path.join(d, "Y.npy"), Y.astype(np.int64))
    nspec = f"npy:{d}/X.npy,{d}/Y.npy"
    xs = [T.Normalize(MEAN, STD)(T.ToTensor()(Image.fromarray(x)).expand(3, -1, -1)) for x in X]
    out, _ = eval_run("npy", d, "-m", "resnet18", "-w", wpth, "--data", nspec)
    compare_probs("npy gray default", model, xs, Y, out)
    same_as_metrics_cli("npy", out, "multiclass")
    mj = json.load(open(os.path.join(out, "metrics.json")))
    check("class_names" not in mj, "npy: numbered classes are not names")
    check(mj["eval"]["transform"] == "grayscale(3),to_tensor,normalize(imagenet)",
          f"gray default transform {mj['eval']['transform']}")

    # a training checkpoint: safetensors + JSON sidecar with class names and the eval transform
    sd = {k: v for k, v in model.state_dict().items()}
    wst = os.path.join(d, "best.safetensors")
    cvtest.save_safetensors(sd, wst)
    names = ["zero", "one", "two"]
    json.dump({"format": "cvision-checkpoint", "version": 1, "num_classes": 3, "classes": names,
               "eval_transform": "grayscale(3),resize(36),center_crop(32),to_tensor,normalize(0.5,0.25)"},
              open(os.path.join(d, "best.json"), "w"))
    tv = T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(), T.Normalize(0.5, 0.25)])
    xs = [tv(Image.fromarray(x).convert("RGB")) for x in X]
    out, text = eval_run("sidecar", d, "-m", "resnet18", "-w", wst, "--data", nspec)
    compare_probs("sidecar transform", model, xs, Y, out)
    same_as_metrics_cli("sidecar", out, "multiclass")
    mj = json.load(open(os.path.join(out, "metrics.json")))
    check(mj.get("class_names") == names, f"sidecar class names {mj.get('class_names')}")
    check(all(c in text for c in names), "sidecar class names in the text summary")

    # the class count must agree with the model's
    os.makedirs(os.path.join(d, "two", "a"))
    os.makedirs(os.path.join(d, "two", "b"))
    pil[0].save(os.path.join(d, "two", "a", "x.png"))
    pil[1].save(os.path.join(d, "two", "b", "x.png"))
    p = run("eval", "-m", "resnet18", "-w", wpth, "--data", "folder:" + os.path.join(d, "two"), check=False)
    err = p.stderr.strip()
    check(p.returncode != 0 and len(err.splitlines()) == 1 and "2 classes" in err and "3 outputs" in err,
          f"class count mismatch: {err}")
    shutil.rmtree(d)
    cvtest.finish()


if __name__ == "__main__":
    main()
