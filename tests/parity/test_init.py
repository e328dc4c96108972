"""Per-family weight initialisation (issue 6): a model built without weights gets torchvision's
initialisation for its family (kaiming normal fan_out convolutions for ResNet/MobileNet/
EfficientNet, trunc_normal for ConvNeXt/Swin, ViT's zero head and class token, xavier MLPs, ...).
For one model of each family, `cvision train` with lr 0 saves the initialised weights (one step
at learning rate 0 and no weight decay changes no parameter); each tensor is compared with the
same tensor of a freshly constructed torchvision model: constant tensors (norm weights and biases,
zero biases, layer scales, zero heads) must be equal, random ones must pass a two-sample
Kolmogorov-Smirnov test (p > 1e-4, up to 20000 values per side) and have a std within
max(5%, 4/sqrt(n)) of torchvision's (about 4 standard errors of the ratio; n >= 100 values).
Running statistics and buffers are not compared (a training step updates the former)."""
import os
import shutil

import numpy as np
import torch
import torchvision
from scipy import stats
from torchvision.models.vision_transformer import VisionTransformer

from cvtest import check, finish, load_safetensors, run, tmpdir

K = 10
FAMILIES = [  # (cvision arch, torchvision constructor, input side)
    ("resnet18", lambda: torchvision.models.resnet18(num_classes=K), 32),
    ("mobilenet_v3_small", lambda: torchvision.models.mobilenet_v3_small(num_classes=K), 32),
    ("squeezenet1_1", lambda: torchvision.models.squeezenet1_1(num_classes=K), 32),
    ("densenet121", lambda: torchvision.models.densenet121(num_classes=K), 32),
    ("shufflenet_v2_x0_5", lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=K), 32),
    ("mnasnet0_5", lambda: torchvision.models.mnasnet0_5(num_classes=K), 32),
    ("googlenet", lambda: torchvision.models.googlenet(num_classes=K, aux_logits=False, init_weights=True), 32),
    ("inception_v3", lambda: torchvision.models.inception_v3(num_classes=K, aux_logits=False, init_weights=True),
     75),
    ("efficientnet_b0", lambda: torchvision.models.efficientnet_b0(num_classes=K), 32),
    ("regnet_y_400mf", lambda: torchvision.models.regnet_y_400mf(num_classes=K), 32),
    ("convnext_tiny", lambda: torchvision.models.convnext_tiny(num_classes=K), 32),
    ("deit_tiny_patch16_224", lambda: VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3,
                                                        hidden_dim=192, mlp_dim=768, num_classes=K), 224),
    ("swin_v2_t", lambda: torchvision.models.swin_v2_t(num_classes=K), 32),
    ("maxvit_t", lambda: torchvision.models.maxvit_t(num_classes=K), 224),
]


def main():
    d = tmpdir()
    only = os.environ.get("INIT_ONLY")
    rng = np.random.default_rng(0)
    for arch, ctor, side in FAMILIES:
        if only and only not in arch:
            continue
        x = rng.integers(0, 256, (2, side, side, 3), dtype=np.uint8)
        np.save(os.path.join(d, "X.npy"), x)
        np.save(os.path.join(d, "Y.npy"), np.array([0, K - 1], dtype=np.int64))
        out = os.path.join(d, f"run-{arch}")
        run("train", "-m", arch, "--data", f"npy:{d}/X.npy,{d}/Y.npy", "--val-fraction", "0", "--out", out,
            "--epochs", 1, "--batch", 2, "--max-steps", 1, "--opt", "sgd", "--lr", 0, "--momentum", 0, "--wd", 0,
            "--train-transform", "to_tensor", "--no-shuffle", "--quiet", "--workers", 1, "--threads", 2,
            "--seed", 3)
        got = load_safetensors(os.path.join(out, "last.safetensors"))
        shutil.rmtree(out)
        torch.manual_seed(0)
        ref = ctor().state_dict()
        bad, n = [], 0
        for name, t in ref.items():
            if not t.is_floating_point() or "running" in name or name.endswith("relative_coords_table"):
                continue
            g = got.get(name)
            if g is None or g.shape != t.shape:
                bad.append(f"{name}: missing or shape")
                continue
            n += 1
            a, b = g.double().flatten().numpy(), t.double().flatten().numpy()
            if b.min() == b.max():
                if not np.allclose(a, b[0], rtol=1e-6, atol=0):
                    bad.append(f"{name}: {a.min():.3g}..{a.max():.3g}, torchvision constant {b[0]:.3g}")
                continue
            if a.size < 100:
                continue
            sa = a if a.size <= 20000 else rng.choice(a, 20000, replace=False)
            sb = b if b.size <= 20000 else rng.choice(b, 20000, replace=False)
            p = stats.ks_2samp(sa, sb).pvalue
            ratio = a.std() / b.std()
            if p < 1e-4 or abs(ratio - 1) > max(0.05, 4 / np.sqrt(a.size)):  # ~4 sigma of the ratio
                bad.append(f"{name}: KS p {p:.2g}, std {a.std():.3g} vs {b.std():.3g}")
        check(not bad, f"{arch:22s} {n} tensors like torchvision's init" + (f": {'; '.join(bad[:4])}" if bad else ""))
    shutil.rmtree(d)  # checkpoints of every model: hundreds of MB
    finish()


if __name__ == "__main__":
    main()
