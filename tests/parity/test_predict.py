"""`cvision predict` end to end against torchvision: a checkpoint named like torchvision's
IMAGENET1K_V1 file gets that weight's preprocessing (ResNet18_Weights.IMAGENET1K_V1.transforms(),
applied by torchvision to PIL images) and category names; top-5 indices and labels must be the
same and probabilities within 1e-4. A cached file whose hash does not match its name is refused
in one line."""
import json
import os
import shutil

import numpy as np
import torch
import torchvision
from PIL import Image

from cvtest import check, finish, run, tmpdir


def main():
    d = tmpdir()
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features) + 0.5)
                m.weight.copy_(torch.rand(m.num_features) * 0.4 + 0.2)
                m.bias.copy_(torch.randn(m.num_features) * 0.2)
    ckpt = os.path.join(d, "resnet18-f37072fd.pth")  # the catalog's file name: its preset applies
    torch.save(model.state_dict(), ckpt)
    rng = np.random.default_rng(1)
    images = []
    for i, (w, h) in enumerate([(500, 375), (193, 161), (224, 224), (300, 600)]):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(128 + 100 * np.sin(xx / (7 + i) + c) * np.cos(yy / (11 + c))) for c in range(3)], -1)
        img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        path = os.path.join(d, f"img{i}.{'jpg' if i % 2 else 'png'}")
        Image.fromarray(img).save(path, quality=90)
        images.append(path)
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    tf, cats = weights.transforms(), weights.meta["categories"]
    # Centre the head on these images' mean feature: a random backbone's pooled features differ
    # little between images, and the shared part would rank the classes the same for all of them.
    with torch.no_grad():
        feats = torch.nn.Sequential(*list(model.children())[:-1])(
            torch.stack([tf(Image.open(p).convert("RGB")) for p in images])).flatten(1)
        model.fc.weight.mul_(0.3 / float(feats.std(0).mean()))
        model.fc.bias.copy_(-model.fc.weight @ feats.mean(0))
    torch.save(model.state_dict(), ckpt)
    out = json.loads(run("predict", "-m", "resnet18", "-w", ckpt, "--topk", 5, "--json", *images).stdout)
    tops = {tuple(t["index"] for t in r["top"]) for r in out}
    check(len(tops) > 1, f"the images are told apart ({len(tops)} distinct top-5 lists)")
    for res, path in zip(out, images):
        with torch.no_grad():
            p = torch.softmax(model(tf(Image.open(path).convert("RGB"))[None]), 1)[0]
        top = torch.topk(p, 5)
        ref = [(int(i), cats[int(i)], float(v)) for v, i in zip(top.values, top.indices)]
        got = [(t["index"], t["label"], t["probability"]) for t in res["top"]]
        same = [g[0] for g in got] == [r[0] for r in ref] and [g[1] for g in got] == [r[1] for r in ref]
        dp = max(abs(g[2] - r[2]) for g, r in zip(got, ref))
        check(res["image"] == path and same and dp <= 1e-4 and ref[0][2] < 0.9,
              f"{os.path.basename(path)}: top-5 {[g[0] for g in got]} vs {[r[0] for r in ref]}, max|dp| {dp:.2e}")
    # the hub cache: a file under the catalog's name whose SHA-256 does not start with f37072fd
    home = os.path.join(d, "torch")
    os.makedirs(os.path.join(home, "hub", "checkpoints"))
    shutil.copy(ckpt, os.path.join(home, "hub", "checkpoints"))
    env = dict(os.environ, TORCH_HOME=home)
    import subprocess
    p = subprocess.run([os.environ.get("CVISION", "build/cvision"), "predict", "-m", "resnet18", "-w",
                        "IMAGENET1K_V1", images[0]], capture_output=True, text=True, env=env, timeout=120)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 1 and len(lines) == 1 and "f37072fd" in lines[0],
          f"cached file with the wrong hash refused: {p.stderr.strip()[:200]!r}")
    finish()


if __name__ == "__main__":
    main()
