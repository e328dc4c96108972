"""Bad input to the engine's commands: each case must exit 1 with exactly one line on stderr that
says what is wrong (and names the file where there is one) — never a crash, a sanitizer report or
a hang. Runs against the ASan/UBSan build."""
import os

import numpy as np
import torch
import torchvision

from cvtest import check, finish, run, tmpdir


def expect_error(what, args, *needles):
    p = run(*args, check=False, timeout=120)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    ok = p.returncode == 1 and len(lines) == 1 and lines[0].startswith("cvision: ")
    ok = ok and all(n in lines[0] for n in needles)
    check(ok, f"{what}: rc={p.returncode} stderr={p.stderr.strip()[:300]!r}")


def main():
    d = tmpdir()
    torch.manual_seed(0)
    r18 = os.path.join(d, "resnet18.pth")
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), r18)
    x = os.path.join(d, "x.npy")
    np.save(x, np.random.rand(1, 3, 64, 64).astype(np.float32))
    y = os.path.join(d, "y.npy")

    expect_error("checkpoint for the wrong architecture",
                 ["forward", "-m", "resnet34", "-w", r18, "--input", x, "--output", y], r18, "missing keys", "layer1.2")
    expect_error("checkpoint for another head size",
                 ["forward", "-m", "resnet18", "-w", r18, "--num-classes", "10", "--input", x, "--output", y],
                 "fc.weight", "[4, 512]")
    expect_error("unknown architecture", ["forward", "-m", "resnet9", "-w", r18, "--input", x, "--output", y], "resnet9")
    expect_error("missing weights file", ["forward", "-m", "resnet18", "-w", os.path.join(d, "nope.pth"),
                                          "--input", x, "--output", y], "nope.pth")
    f64 = os.path.join(d, "f64.npy")
    np.save(f64, np.random.rand(1, 3, 64, 64))
    expect_error("npy of the wrong dtype", ["forward", "-m", "resnet18", "-w", r18, "--input", f64, "--output", y],
                 f64, "float64")
    chw = os.path.join(d, "chw.npy")
    np.save(chw, np.random.rand(3, 64, 64).astype(np.float32))
    expect_error("npy of the wrong shape", ["forward", "-m", "resnet18", "-w", r18, "--input", chw, "--output", y],
                 chw, "[3, 64, 64]")
    gray = os.path.join(d, "gray.npy")
    np.save(gray, np.random.rand(1, 1, 64, 64).astype(np.float32))
    expect_error("npy with one channel", ["forward", "-m", "resnet18", "-w", r18, "--input", gray, "--output", y], gray)
    junk = os.path.join(d, "junk.npy")
    open(junk, "wb").write(b"\x93NUMPY\x01\x00\xff\xff{'descr'")
    expect_error("corrupt npy", ["forward", "-m", "resnet18", "-w", r18, "--input", junk, "--output", y], junk)
    tiny = os.path.join(d, "tiny.npy")
    np.save(tiny, np.random.rand(1, 3, 8, 8).astype(np.float32))
    torch.save(torchvision.models.alexnet(num_classes=4).state_dict(), os.path.join(d, "alex.pth"))
    expect_error("input too small for the architecture",
                 ["forward", "-m", "alexnet", "-w", os.path.join(d, "alex.pth"), "--input", tiny, "--output", y],
                 "too small")
    notimg = os.path.join(d, "photo.jpg")
    open(notimg, "w").write("this is not an image\n")
    expect_error("an image that is not an image", ["predict", "-m", "resnet18", "-w", r18, notimg], notimg)
    trunc = os.path.join(d, "trunc.png")
    from PIL import Image
    Image.fromarray((np.random.rand(40, 50, 3) * 255).astype(np.uint8)).save(trunc)
    data = open(trunc, "rb").read()
    open(trunc, "wb").write(data[: len(data) // 2])
    expect_error("a truncated PNG", ["predict", "-m", "resnet18", "-w", r18, trunc], trunc)
    expect_error("bad option value", ["bench", "-m", "resnet18", "--batch", "zero"], "--batch")
    finish()


if __name__ == "__main__":
    main()
