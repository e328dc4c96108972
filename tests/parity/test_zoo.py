"""Model-zoo parity with torchvision 0.14 (issue 6): for every architecture family beyond the engine
issue's, random weights with randomised normalisation statistics saved by torch.save (zip or legacy),
`cvision forward` against PyTorch's eval-mode output within max|d| <= 1e-4 * max|logit|, on odd input
sizes. Small heads (num_classes) keep the files small; at least one model per family runs at full
width with the 1000-class head. Also the checkpoint quirks: DenseNet's old "norm.1" key names,
MNASNet's version-1 stem, GoogLeNet/Inception's transform_input, ViT's old MLP key names.
ZOO_ONLY=regex runs a subset; ZOO_BIG=1 adds the largest models."""
import contextlib
import math
import os
import re
import time

import numpy as np
import torch
import torchvision

from cvtest import check, finish, run, tmpdir

torch.manual_seed(0)
torch.set_num_threads(2)
TOL = 1e-4

# (arch, num_classes, input H, W, format)
CASES = [
    ("mobilenet_v3_large", 1000, 193, 161, "zip"),
    ("mobilenet_v3_small", 10, 97, 131, "legacy"),
    ("squeezenet1_0", 1000, 193, 161, "zip"),
    ("squeezenet1_1", 10, 113, 127, "legacy"),
    ("densenet121", 1000, 129, 97, "zip"),
    ("densenet161", 10, 65, 67, "zip"),
    ("densenet169", 10, 65, 67, "legacy"),
    ("densenet201", 10, 65, 67, "zip"),
    ("shufflenet_v2_x0_5", 10, 97, 131, "legacy"),
    ("shufflenet_v2_x1_0", 1000, 193, 161, "zip"),
    ("shufflenet_v2_x1_5", 10, 97, 131, "zip"),
    ("shufflenet_v2_x2_0", 10, 97, 131, "legacy"),
    ("mnasnet0_5", 10, 97, 131, "legacy"),
    ("mnasnet0_75", 10, 97, 131, "zip"),
    ("mnasnet1_0", 1000, 193, 161, "zip"),
    ("mnasnet1_3", 10, 97, 131, "legacy"),
    ("googlenet", 1000, 193, 161, "zip"),
    ("inception_v3", 10, 149, 163, "legacy"),
    ("efficientnet_b0", 1000, 193, 161, "zip"),
    ("efficientnet_b1", 10, 67, 71, "legacy"),
    ("efficientnet_b2", 10, 67, 71, "zip"),
    ("efficientnet_b3", 10, 67, 71, "legacy"),
    ("efficientnet_b4", 10, 67, 71, "zip"),
    ("efficientnet_b5", 10, 49, 51, "legacy"),
    ("efficientnet_b6", 10, 49, 51, "zip"),
    ("efficientnet_b7", 10, 49, 51, "legacy"),
    ("efficientnet_v2_s", 1000, 97, 101, "zip"),
    ("efficientnet_v2_m", 10, 49, 51, "legacy"),
    ("efficientnet_v2_l", 10, 49, 51, "zip"),
    ("regnet_y_400mf", 1000, 193, 161, "zip"),
    ("regnet_y_800mf", 10, 67, 71, "legacy"),
    ("regnet_y_1_6gf", 10, 67, 71, "zip"),
    ("regnet_y_3_2gf", 10, 67, 71, "legacy"),
    ("regnet_y_8gf", 10, 49, 51, "zip"),
    ("regnet_y_16gf", 10, 49, 51, "legacy"),
    ("regnet_y_32gf", 10, 49, 51, "zip"),
    ("regnet_x_400mf", 1000, 193, 161, "zip"),
    ("regnet_x_800mf", 10, 67, 71, "legacy"),
    ("regnet_x_1_6gf", 10, 67, 71, "zip"),
    ("regnet_x_3_2gf", 10, 67, 71, "legacy"),
    ("regnet_x_8gf", 10, 49, 51, "zip"),
    ("regnet_x_16gf", 10, 49, 51, "legacy"),
    ("regnet_x_32gf", 10, 49, 51, "zip"),
    ("convnext_tiny", 1000, 97, 101, "zip"),
    ("convnext_small", 10, 65, 67, "legacy"),
    ("convnext_base", 10, 33, 35, "zip"),
    ("convnext_large", 10, 33, 35, "legacy"),
    ("vit_b_32", 1000, 224, 224, "zip"),  # ViT runs at the image size of its position embeddings
    ("vit_b_16", 10, 64, 64, "legacy"),    # built with image_size=64 (17 tokens)
    ("swin_t", 1000, 97, 101, "zip"),   # windows padded at every stage, shifted and masked
    ("swin_s", 10, 65, 67, "legacy"),
    ("swin_b", 10, 65, 67, "zip"),
    ("swin_v2_t", 1000, 97, 101, "legacy"),  # 8x8 windows: padded, shifted, shift zeroed on 6x6
    ("swin_v2_s", 10, 33, 35, "zip"),
    ("swin_v2_b", 10, 33, 35, "legacy"),
    ("resnext101_64x4d", 10, 65, 67, "zip"),
]

# Checked when ZOO_BIG=1 (0.3-2.6 GB of weights each: too slow to write and read in CI)
BIG_CASES = [
    ("wide_resnet101_2", 10, 65, 67, "legacy"),
    ("regnet_y_128gf", 10, 33, 35, "zip"),
    ("vit_l_16", 10, 32, 32, "zip"),
    ("vit_l_32", 10, 64, 64, "legacy"),
    ("vit_h_14", 10, 28, 28, "zip"),
]


@contextlib.contextmanager
def fast_init():
    """torchvision's normal initialisers (trunc_normal_ on ConvNeXt-L's 200M weights takes 15 s on
    two cores) replaced, while a model is built, by uniform fills of the same mean and std."""
    init = torch.nn.init
    saved = {n: getattr(init, n) for n in ("trunc_normal_", "normal_", "kaiming_normal_")}

    def uniform(t, mean, std):
        with torch.no_grad():
            return t.uniform_(mean - std * math.sqrt(3), mean + std * math.sqrt(3))

    def kaiming(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
        fan = init._calculate_correct_fan(t, mode)
        return uniform(t, 0.0, init.calculate_gain(nonlinearity, a) / math.sqrt(fan))

    init.trunc_normal_ = lambda t, mean=0.0, std=1.0, a=-2.0, b=2.0: uniform(t, mean, std)
    init.normal_ = lambda t, mean=0.0, std=1.0: uniform(t, mean, std)
    init.kaiming_normal_ = kaiming
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(init, n, f)


def randomise_norms(model):
    """Non-trivial statistics and affine parameters for every normalisation layer."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c) * 0.2)
            m.running_var.copy_(torch.rand(c) + 0.5)
            m.weight.data.copy_(torch.rand(c) * 0.4 + 0.2)  # < 1 keeps deep residual streams O(1)
            m.bias.data.copy_(torch.randn(c) * 0.2)
            m.num_batches_tracked.fill_(int(torch.randint(0, 1000, ())))
        elif isinstance(m, torch.nn.LayerNorm):
            m.weight.data.copy_(torch.rand(m.weight.shape) * 0.4 + 0.2)
            m.bias.data.copy_(torch.randn(m.bias.shape) * 0.2)
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):  # ConvNeXt starts at 1e-6: make the blocks count
            p.data.copy_(torch.rand(p.shape) * 0.5 + 0.1)
        elif not p.data.any():  # zero-initialised: ViT's head and class token, biases
            fan_in = p.shape[1] if p.dim() == 2 else 1
            p.data.copy_(torch.randn(p.shape) * (0.1 if p.dim() < 2 else 1 / math.sqrt(fan_in)))


def densenet_old_keys(sd):
    """The published DenseNet checkpoints' spelling: denselayerN.norm.1.weight for norm1.weight."""
    pat = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    out = type(sd)()
    for k, v in sd.items():
        m = pat.match(k)
        out[m.group(1) + "." + m.group(2) if m else k] = v
    return out


def mnasnet_v1(model):
    """A version-1 MNASNet checkpoint: the stem (32, 32, 16 channels) not scaled by alpha, exactly as
    torchvision's _load_from_state_dict rebuilds it for such files."""
    from torchvision.models.mnasnet import _BN_MOMENTUM, _get_depths, _stack
    nn = torch.nn
    depths = _get_depths(model.alpha)
    stem = [nn.Conv2d(3, 32, 3, padding=1, stride=2, bias=False), nn.BatchNorm2d(32, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True), nn.Conv2d(32, 32, 3, padding=1, stride=1, groups=32, bias=False),
            nn.BatchNorm2d(32, momentum=_BN_MOMENTUM), nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, 1, padding=0, stride=1, bias=False), nn.BatchNorm2d(16, momentum=_BN_MOMENTUM),
            _stack(16, depths[2], 3, 2, 3, 3, _BN_MOMENTUM)]
    for i, layer in enumerate(stem):
        model.layers[i] = layer
    model._version = 1
    return model


def vit_old_keys(sd):
    """MLPBlock version 1: mlp.linear_1 / mlp.linear_2 for mlp.0 / mlp.3."""
    out = type(sd)()
    for k, v in sd.items():
        out[k.replace(".mlp.0.", ".mlp.linear_1.").replace(".mlp.3.", ".mlp.linear_2.")] = v
    return out


def compare(d, arch, k, h, w, fmt, sd_fn=None, label="", model_fn=None, kwargs=None, fname=None):
    t0 = time.time()
    if arch.startswith("vit_") and h != 224:
        kwargs = {"image_size": h, **(kwargs or {})}
    if arch in ("googlenet", "inception_v3"):
        kwargs = {"init_weights": True, **(kwargs or {})}  # silences torchvision's FutureWarning
    with fast_init():
        model = getattr(torchvision.models, arch)(num_classes=k, **(kwargs or {}))
    if model_fn:
        model = model_fn(model)
    model.eval()
    with torch.no_grad():
        randomise_norms(model)
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        ref = model(x).numpy()
    sd = model.state_dict()
    if sd_fn:
        sd = sd_fn(sd)
    wpath = os.path.join(d, fname or f"{arch}.pth")
    torch.save(sd, wpath, _use_new_zipfile_serialization=fmt == "zip")
    np.save(os.path.join(d, "x.npy"), x.numpy())
    out = os.path.join(d, "y.npy")
    run("forward", "-m", arch, "-w", wpath, "--input", os.path.join(d, "x.npy"), "--output", out)
    y = np.load(out)
    scale = float(np.abs(ref).max())
    diff = float(np.abs(y - ref).max()) if y.shape == ref.shape else float("inf")
    check(y.shape == ref.shape and diff <= TOL * scale,
          f"{arch:20s} K={k:<4d} {fmt:6s} 2x3x{h}x{w}{label}: max|logit| {scale:.3g}, max|d| {diff:.3g}"
          f" ({time.time() - t0:.1f}s)")
    os.remove(wpath)


def vit_interpolated(d, src, res, fmt):
    """A ViT-B/16 checkpoint for src x src images run at res x res: cvision's --res against
    torchvision's interpolate_embeddings (bicubic, align_corners=True, class token kept) loaded
    into a model built for res."""
    from torchvision.models.vision_transformer import interpolate_embeddings
    t0 = time.time()
    with fast_init():
        model = torchvision.models.vit_b_16(num_classes=5, image_size=src)
    with torch.no_grad():
        randomise_norms(model)
        model.encoder.pos_embedding.normal_()  # as large as the patch embeddings: errors show
    sd = model.state_dict()
    wpath = os.path.join(d, "vit_src.pth")
    torch.save(sd, wpath, _use_new_zipfile_serialization=fmt == "zip")
    with fast_init():
        target = torchvision.models.vit_b_16(num_classes=5, image_size=res)
    target.load_state_dict(interpolate_embeddings(res, 16, sd))
    target.eval()
    x = torch.randn(2, 3, res, res)
    with torch.no_grad():
        ref = target(x).numpy()
    np.save(os.path.join(d, "x.npy"), x.numpy())
    out = os.path.join(d, "y.npy")
    run("forward", "-m", "vit_b_16", "-w", wpath, "--res", res, "--input", os.path.join(d, "x.npy"),
        "--output", out)
    y = np.load(out)
    scale = float(np.abs(ref).max())
    diff = float(np.abs(y - ref).max()) if y.shape == ref.shape else float("inf")
    check(y.shape == ref.shape and diff <= TOL * scale,
          f"vit_b_16 {src}->{res} position embeddings interpolated: max|logit| {scale:.3g}, "
          f"max|d| {diff:.3g} ({time.time() - t0:.1f}s)")
    os.remove(wpath)


def main():
    d = tmpdir()
    only = os.environ.get("ZOO_ONLY")
    for arch, k, h, w, fmt in CASES + (BIG_CASES if os.environ.get("ZOO_BIG") else []):
        if not only or re.search(only, arch):
            compare(d, arch, k, h, w, fmt)
    if not only or re.search(only, "densenet121"):
        compare(d, "densenet121", 5, 67, 71, "legacy", densenet_old_keys, " (old norm.1 keys)")
    if not only or re.search(only, "mnasnet0_5"):
        compare(d, "mnasnet0_5", 5, 67, 71, "zip", label=" (version-1 stem)", model_fn=mnasnet_v1)
    # torchvision's pretrained GoogLeNet/Inception run with transform_input=True: a checkpoint under
    # the catalog's file name gets it, as `-w IMAGENET1K_V1` does
    for arch, fname, hw in (("googlenet", "googlenet-1378be20.pth", (97, 101)),
                            ("inception_v3", "inception_v3_google-0cc3c7bd.pth", (89, 93))):
        if not only or re.search(only, arch):
            compare(d, arch, 5, *hw, "zip", label=" (transform_input)", fname=fname,
                    kwargs={"transform_input": True, "aux_logits": True, "init_weights": True})
    if not only or re.search(only, "vit_b_32"):
        compare(d, "vit_b_32", 5, 64, 64, "zip", label=" (old mlp.linear_1 keys)", sd_fn=vit_old_keys)
    if not only or re.search(only, "vit_b_16"):
        vit_interpolated(d, 64, 96, "zip")  # 4x4 -> 6x6 grid
        vit_interpolated(d, 80, 48, "legacy")  # 5x5 -> 3x3
    # MaxViT is built for one input size (stage maps multiples of 7): 223 rounds up like 224
    if not only or re.search(only, "maxvit_t"):
        compare(d, "maxvit_t", 1000, 223, 223, "zip", kwargs={"input_size": (223, 223)})
    finish()


if __name__ == "__main__":
    main()
