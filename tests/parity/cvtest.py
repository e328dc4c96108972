"""Shared helpers for the parity tests: run the cvision CLI, write safetensors/npy, report."""
import atexit
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

CVISION = os.environ.get("CVISION", "build/cvision")
SRC = os.environ.get("CVISION_SRC", os.getcwd())

_failures = []


def run(*args, check=True, timeout=600):
    """Runs the cvision CLI; returns the CompletedProcess (text mode)."""
    p = subprocess.run([CVISION, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"cvision {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def save_safetensors(tensors, path, metadata=None):
    """A safetensors writer (the python package is not in Debian bookworm): header padded to 8."""
    import torch
    dtypes = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def check(cond, what):
    """Records a failed expectation without stopping the test."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        _failures.append(what)


def finish():
    if _failures:
        print(f"{len(_failures)} checks failed", file=sys.stderr)
        sys.exit(1)


def tmpdir():
    """A fresh temporary directory, removed when the test exits (CVTEST_KEEP=1 keeps it): model
    checkpoints make these hundreds of MB, and CI runs every test on one disk."""
    d = tempfile.mkdtemp(prefix="cvtest-")
    if not os.environ.get("CVTEST_KEEP"):
        atexit.register(shutil.rmtree, d, True)
    return d


def smooth_images(rng, n, size):
    """n low-frequency sinusoid RGB images (NHWC uint8): natural-image-like statistics, unlike
    i.i.d. noise, which gives near-zero gradients through training-mode batch norm."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    x = np.zeros((n, size, size, 3))
    for i in range(n):
        for c in range(3):
            a, b, ph = rng.uniform(0.5, 3, 3)
            x[i, :, :, c] = 0.5 + 0.4 * np.sin(2 * np.pi * (a * xx + b * yy) + 6 * ph)
    return (x * 255).round().astype(np.uint8)


def state_error(got, ref):
    """(worst error, tensor name) of state_dict `got` against `ref`: errors relative to the largest
    parameter for weights and to each tensor's own largest value for running statistics; integer
    tensors must be equal; a missing or reshaped tensor is an infinite error."""
    import torch
    scale = max(float(t.abs().max()) for n, t in ref.items() if t.is_floating_point() and "running" not in n)
    worst, wname = 0.0, ""
    for name, t in ref.items():
        g = got.get(name)
        if g is None or g.shape != t.shape:
            return float("inf"), name
        if not t.is_floating_point():
            if not torch.equal(g.long(), t.long()):
                return float("inf"), name
            continue
        s = max(float(t.abs().max()), 1e-12) if "running" in name else scale
        e = float((g.double() - t.double()).abs().max()) / s
        if e > worst:
            worst, wname = e, name
    return worst, wname


def load_safetensors(path):
    """Reads a safetensors file into {name: torch.Tensor} (the reference package is not in
    Debian bookworm)."""
    import torch
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out
