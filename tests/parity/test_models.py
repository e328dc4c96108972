"""Model parity with torchvision 0.14: random weights with randomised batch-norm statistics, saved
in the zip, legacy and safetensors formats, odd input sizes. cvision's logits must match PyTorch's
eval-mode output within max|d| <= 1e-4 * max|logit|."""
import os

import numpy as np
import torch
import torchvision

from cvtest import check, finish, run, save_safetensors, tmpdir

torch.manual_seed(0)
torch.set_num_threads(2)
TOL = 1e-4

# (arch, num_classes, format) — every builder of the engine issue; formats rotate so that each is
# exercised on several architectures without writing every large VGG three times.
CASES = [
    ("resnet18", 1000, "zip"), ("resnet18", 10, "legacy"), ("resnet18", 3, "safetensors"),
    ("resnet34", 10, "legacy"), ("resnet50", 10, "zip"), ("resnet101", 7, "safetensors"),
    ("resnet152", 10, "zip"), ("resnext50_32x4d", 10, "legacy"), ("resnext101_32x8d", 10, "safetensors"),
    ("wide_resnet50_2", 10, "zip"), ("alexnet", 10, "legacy"), ("mobilenet_v2", 1000, "zip"),
    ("mobilenet_v2", 5, "safetensors"), ("mobilenet_v2", 10, "legacy"),
    ("vgg11", 10, "zip"), ("vgg11_bn", 10, "safetensors"), ("vgg13", 10, "legacy"), ("vgg13_bn", 10, "zip"),
    ("vgg16", 10, "safetensors"), ("vgg16_bn", 10, "legacy"), ("vgg19", 10, "zip"), ("vgg19_bn", 10, "safetensors"),
]


def randomise_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c) * 0.2)
            m.running_var.copy_(torch.rand(c) + 0.5)
            m.weight.data.copy_(torch.rand(c) * 0.4 + 0.2)  # < 1 keeps deep residual streams O(1)
            m.bias.data.copy_(torch.randn(c) * 0.2)
            m.num_batches_tracked.fill_(int(torch.randint(0, 1000, ())))


def save(model, path, fmt):
    sd = model.state_dict()
    if fmt == "zip":
        torch.save(sd, path)
    elif fmt == "legacy":
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    else:
        save_safetensors(sd, path)


def main():
    d = tmpdir()
    for arch, k, fmt in CASES:
        model = getattr(torchvision.models, arch)(num_classes=k).eval()
        with torch.no_grad():
            randomise_bn(model)
        h, w = (193, 161) if arch != "alexnet" else (227, 199)
        n = 2
        x = torch.randn(n, 3, h, w)
        with torch.no_grad():
            ref = model(x).numpy()
        wpath = os.path.join(d, f"{arch}.{'safetensors' if fmt == 'safetensors' else 'pth'}")
        save(model, wpath, fmt)
        np.save(os.path.join(d, "x.npy"), x.numpy())
        out = os.path.join(d, "y.npy")
        args = ["forward", "-m", arch, "-w", wpath, "--input", os.path.join(d, "x.npy"), "--output", out]
        if k != 1000 and arch.startswith("resnet18"):
            args += ["--num-classes", k]  # explicit here, inferred from the file elsewhere
        run(*args)
        y = np.load(out)
        scale = float(np.abs(ref).max())
        diff = float(np.abs(y - ref).max()) if y.shape == ref.shape else float("inf")
        check(y.shape == ref.shape and diff <= TOL * scale,
              f"{arch:18s} K={k:<4d} {fmt:11s} {n}x3x{h}x{w}: max|logit| {scale:.3g}, max|d| {diff:.3g}")
        os.remove(wpath)
    finish()


if __name__ == "__main__":
    main()
