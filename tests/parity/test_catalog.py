"""The weights catalog (`cvision models --json`, `--categories`) against torchvision 0.14's own
enums: every entry's URL/file, hash prefix, accuracies, parameter count, eval transform, min size,
DEFAULT flag, and the 1000 category names. GFLOPs (absent from 0.14) are checked by counting the
multiply-accumulates of Conv2d/Linear layers in a forward pass (torchvision's `_ops` are GMACs)
for a set of convolutional architectures: |catalog - counted| <= 0.0005 + 0.1%. EfficientNet V1
files must carry the 2023 re-upload names (same stem, different hash) instead of 0.14's."""
import json
import math
import os
import re
import subprocess
import sys

import torch
import torchvision
from torchvision import models

CVISION = os.environ["CVISION"]
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def same(a, b):
    return (a is None and isinstance(b, float) and math.isnan(b)) or a == b


def gmacs(model, size):
    total = [0]

    def hook(m, i, o):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total[0] += o.numel() * m.in_features

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    return total[0] / 1e9


def main():
    out = subprocess.run([CVISION, "models", "--json"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    cat = json.loads(out)
    got = {e["weights"]: e for e in cat["weights"]}
    check(cat["count"] == len(cat["weights"]) == 115, f"count {cat['count']}")

    n = 0
    for arch in models.list_models(module=models):
        enum = models.get_model_weights(arch)
        for w in enum:
            full = f"{enum.__name__}.{w.name}"
            e = got.pop(full, None)
            if e is None:
                check(False, f"{full} missing from the catalog")
                continue
            n += 1
            t, meta = w.transforms(), w.meta
            m = meta["_metrics"]["ImageNet-1K"]
            file = w.url.rsplit("/", 1)[1]
            if enum.__name__.startswith("EfficientNet_B") and w.name == "IMAGENET1K_V1":
                stem = file.rsplit("-", 1)[0]
                check(e["file"].startswith(stem + "-") and e["file"] != file,
                      f"{full}: expected the re-uploaded file, got {e['file']}")
            else:
                check(e["file"] == file, f"{full}: file {e['file']} vs {file}")
            check(e["url"] == w.url.rsplit("/", 1)[0] + "/" + e["file"], f"{full}: url")
            h = HASH_REGEX.search(e["file"])
            check(e["sha256_prefix"] == (h.group(1) if h else ""), f"{full}: hash prefix")
            check(e["arch"] == arch and e["name"] == w.name, f"{full}: names")
            check(same(e["acc1"], m["acc@1"]) and same(e["acc5"], m["acc@5"]), f"{full}: accuracy")
            check(e["num_params"] == meta["num_params"], f"{full}: num_params")
            check(e["transform"]["resize"] == t.resize_size[0] and
                  e["transform"]["crop"] == t.crop_size[0], f"{full}: resize/crop")
            check(e["transform"]["interpolation"] == t.interpolation.value, f"{full}: interpolation")
            for k in ("mean", "std"):
                check(all(abs(a - b) <= 1e-7 * max(1, abs(b))
                          for a, b in zip(e["transform"][k], getattr(t, k))), f"{full}: {k}")
            check(e["min_size"] == list(meta["min_size"]), f"{full}: min_size")
            check(e["default"] == (w == enum.DEFAULT), f"{full}: default")
            check(e["gflops"] > 0 and e["file_mib"] > 0, f"{full}: gflops/size")
    check(not got, f"catalog entries unknown to torchvision: {list(got)}")

    cats = subprocess.run([CVISION, "models", "--categories"], capture_output=True, text=True,
                          check=True, timeout=60).stdout.split("\n")[:-1]
    check(cats == models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"], "categories differ")

    torch.manual_seed(0)
    for arch in ["alexnet", "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small",
                 "squeezenet1_0", "densenet121", "efficientnet_b0", "efficientnet_b3",
                 "shufflenet_v2_x1_0", "mnasnet1_0", "regnet_y_400mf", "regnet_x_800mf",
                 "convnext_tiny", "googlenet", "vgg11"]:
        for e in (e for e in cat["weights"] if e["arch"] == arch):
            kw = {"init_weights": False} if arch == "googlenet" else {}
            g = gmacs(getattr(models, arch)(**kw), e["transform"]["crop"])
            check(abs(e["gflops"] - g) <= 0.0005 + 0.001 * g,
                  f"{e['weights']}: gflops {e['gflops']} vs counted {g:.4f}")
    print(f"{n} catalog entries checked, {len(FAILS)} failures")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
