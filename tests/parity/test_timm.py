"""timm checkpoints (issue 6): timm's safetensors for torchvision's architectures load through the
key mapping of docs/models.md. timm is not installed, so each timm-style state_dict is made from a
torchvision model's by the inverse mapping (timm's names, ConvNeXt's layer scale as a [C] `gamma`,
timm's buffers left out as timm leaves them), written as safetensors; `cvision forward` on it must
match torchvision's eval output within max|d| <= 1e-4 max|logit|. DeiT tiny/small are ViTs of
widths 192/384 with 3/6 heads (torchvision's VisionTransformer class, no builder of its own).
A state_dict with a stray timm key must fail naming it."""
import math
import os
import shutil
import re

import numpy as np
import torch
import torchvision
from torchvision.models.vision_transformer import VisionTransformer

from cvtest import check, finish, run, save_safetensors, tmpdir

torch.manual_seed(0)
torch.set_num_threads(2)
TOL = 1e-4


def randomise(model):
    """Non-trivial norm statistics/affines and no zero-initialised tensors (ViT's head)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c) * 0.2)
                m.running_var.copy_(torch.rand(c) + 0.5)
                m.weight.copy_(torch.rand(c) * 0.4 + 0.2)
                m.bias.copy_(torch.randn(c) * 0.2)
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape) * 0.4 + 0.2)
                m.bias.copy_(torch.randn(m.bias.shape) * 0.2)
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape) * 0.5 + 0.1)
            elif not p.any():
                fan_in = p.shape[1] if p.dim() == 2 else 1
                p.copy_(torch.randn(p.shape) * (0.1 if p.dim() < 2 else 1 / math.sqrt(fan_in)))
    return model


def vit_to_timm(sd):
    out = {}
    for k, v in sd.items():
        m = re.match(r"encoder\.layers\.encoder_layer_(\d+)\.(.*)$", k)
        if m:
            rest = m.group(2)
            for tv, tm in (("ln_1.", "norm1."), ("self_attention.in_proj_weight", "attn.qkv.weight"),
                           ("self_attention.in_proj_bias", "attn.qkv.bias"),
                           ("self_attention.out_proj.", "attn.proj."), ("ln_2.", "norm2."),
                           ("mlp.0.", "mlp.fc1."), ("mlp.3.", "mlp.fc2.")):
                if rest.startswith(tv):
                    rest = tm + rest[len(tv):]
                    break
            out[f"blocks.{m.group(1)}.{rest}"] = v
            continue
        top = {"class_token": "cls_token", "encoder.pos_embedding": "pos_embed",
               "conv_proj.weight": "patch_embed.proj.weight", "conv_proj.bias": "patch_embed.proj.bias",
               "encoder.ln.weight": "norm.weight", "encoder.ln.bias": "norm.bias",
               "heads.head.weight": "head.weight", "heads.head.bias": "head.bias"}
        out[top[k]] = v
    return out


def convnext_to_timm(sd):
    out = {}
    for k, v in sd.items():
        m = re.match(r"features\.(\d+)\.(.*)$", k)
        if m:
            f, rest = int(m.group(1)), m.group(2)
            if f == 0:
                out["stem." + rest] = v
            elif f % 2 == 0:
                out[f"stages.{f // 2}.downsample.{rest}"] = v
            else:
                b = re.match(r"(\d+)\.(.*)$", rest)
                r = b.group(2)
                if r == "layer_scale":
                    out[f"stages.{f // 2}.blocks.{b.group(1)}.gamma"] = v.reshape(-1)
                    continue
                for tv, tm in (("block.0.", "conv_dw."), ("block.2.", "norm."), ("block.3.", "mlp.fc1."),
                               ("block.5.", "mlp.fc2.")):
                    if r.startswith(tv):
                        r = tm + r[len(tv):]
                out[f"stages.{f // 2}.blocks.{b.group(1)}.{r}"] = v
        else:
            out[k.replace("classifier.0.", "head.norm.").replace("classifier.2.", "head.fc.")] = v
    return out


def efficientnet_to_timm(sd):
    """The inverse of cvision's efficientnet_rename (B0: stage 0 depthwise-separable)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        m = re.match(r"features\.(\d+)\.(\d+)\.block\.(\d+)\.(.*)$", k)
        if m:
            s, i, part, rest = int(m.group(1)) - 1, m.group(2), int(m.group(3)), m.group(4)
            names = ({0: "conv_dw", 1: "se", 2: "conv_pw"} if s == 0 else
                     {0: "conv_pw", 1: "conv_dw", 2: "se", 3: "conv_pwl"})[part]
            bns = {"conv_dw": "bn1", "conv_pw": "bn2"} if s == 0 else {"conv_pw": "bn1", "conv_dw": "bn2",
                                                                        "conv_pwl": "bn3"}
            if names == "se":
                rest = rest.replace("fc1.", "conv_reduce.").replace("fc2.", "conv_expand.")
                out[f"blocks.{s}.{i}.se.{rest}"] = v
            elif rest.startswith("0."):
                out[f"blocks.{s}.{i}.{names}.{rest[2:]}"] = v
            else:
                out[f"blocks.{s}.{i}.{bns[names]}.{rest[2:]}"] = v
            continue
        for tv, tm in (("features.0.0.", "conv_stem."), ("features.0.1.", "bn1."), ("features.8.0.", "conv_head."),
                       ("features.8.1.", "bn2."), ("classifier.1.", "classifier.")):
            if k.startswith(tv):
                out[tm + k[len(tv):]] = v
                break
    return out


def resnet_to_timm(sd):
    """timm's ResNet uses torchvision's names; its checkpoints carry no num_batches_tracked."""
    return {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def compare(d, arch, model, to_timm, h, w, label):
    model = randomise(model).eval()
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        ref = model(x).numpy()
    wpath = os.path.join(d, f"{arch}.safetensors")
    save_safetensors(to_timm(model.state_dict()), wpath)
    np.save(os.path.join(d, "x.npy"), x.numpy())
    out = os.path.join(d, "y.npy")
    run("forward", "-m", arch, "-w", wpath, "--input", os.path.join(d, "x.npy"), "--output", out)
    y = np.load(out)
    scale = float(np.abs(ref).max())
    diff = float(np.abs(y - ref).max()) if y.shape == ref.shape else float("inf")
    check(y.shape == ref.shape and diff <= TOL * scale,
          f"{label:34s} 2x3x{h}x{w}: max|logit| {scale:.3g}, max|d| {diff:.3g}")
    return wpath


def main():
    d = tmpdir()
    compare(d, "resnet50", torchvision.models.resnet50(num_classes=7), resnet_to_timm, 67, 71,
            "resnet50 (timm resnet50.tv_in1k keys)")
    # DeiT at 64x64 (17 tokens); the image size comes from pos_embed as for torchvision's files
    for arch, hidden, heads in (("deit_tiny_patch16_224", 192, 3), ("deit_small_patch16_224", 384, 6)):
        vit = VisionTransformer(image_size=64, patch_size=16, num_layers=12, num_heads=heads,
                                hidden_dim=hidden, mlp_dim=4 * hidden, num_classes=5)
        compare(d, arch, vit, vit_to_timm, 64, 64, f"{arch} (timm DeiT keys)")
    compare(d, "vit_b_16", torchvision.models.vit_b_16(num_classes=5, image_size=32), vit_to_timm, 32, 32,
            "vit_b_16 (timm deit_base keys)")
    compare(d, "efficientnet_b0", torchvision.models.efficientnet_b0(num_classes=5), efficientnet_to_timm, 65, 67,
            "efficientnet_b0 (timm keys)")
    wpath = compare(d, "convnext_tiny", torchvision.models.convnext_tiny(num_classes=5), convnext_to_timm,
                    65, 67, "convnext_tiny (timm keys, [C] gamma)")
    # a key outside the mapping is reported
    sd = convnext_to_timm(torchvision.models.convnext_tiny(num_classes=5).state_dict())
    sd["stages.1.blocks.0.extra.weight"] = torch.zeros(3)
    save_safetensors(sd, wpath)
    p = run("forward", "-m", "convnext_tiny", "-w", wpath, "--input", os.path.join(d, "x.npy"), "--output",
            os.path.join(d, "y.npy"), check=False)
    check(p.returncode == 1 and "stages.1.blocks.0.extra.weight" in p.stderr,
          f"stray timm key named: {p.stderr.strip()[:150]}")
    shutil.rmtree(d)  # checkpoints of every model: hundreds of MB
    finish()


if __name__ == "__main__":
    main()
