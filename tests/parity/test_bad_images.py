"""Hostile images and pipeline strings through `cvision transform` (run in the sanitizer build):
each must give exactly one line on stderr naming the file or the offending token, a non-zero exit,
and no crash or hang."""
import io, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image

CV = os.environ["CVISION"]
fails = 0


def expect_error(args, must_contain, what):
    global fails
    r = subprocess.run([CV, "transform", *args], capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    ok = r.returncode not in (0,) and r.returncode < 128 and len(lines) == 1 and must_contain in lines[0]
    if not ok:
        fails += 1
        print(f"FAIL {what}: rc={r.returncode} stderr={r.stderr!r}")


with tempfile.TemporaryDirectory() as d:
    a = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    blobs = {}
    for fmt, ext in [("PNG", "png"), ("JPEG", "jpg")]:
        b = io.BytesIO()
        Image.fromarray(a).save(b, fmt)
        blobs[ext] = b.getvalue()
    cases = {
        "trunc.png": blobs["png"][: len(blobs["png"]) // 2],
        "trunc.jpg": blobs["jpg"][: len(blobs["jpg"]) // 2],
        "header_only.jpg": blobs["jpg"][:200],
        "crc.png": blobs["png"][:40] + bytes([blobs["png"][40] ^ 0xFF]) + blobs["png"][41:],
        "empty.png": b"",
        "text.jpg": b"this is not an image at all\n",
        "zip.png": b"PK\x03\x04" + b"\x00" * 100,
        "bigdims.png": blobs["png"][:16] + b"\x00\x01\x00\x00\x00\x01\x00\x00" + blobs["png"][24:],
    }
    out = os.path.join(d, "o.npy")
    for name, blob in cases.items():
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(blob)
        expect_error(["-i", p, "-t", "to_tensor", "-o", out], name, name)
    expect_error(["-i", os.path.join(d, "missing.png"), "-t", "to_tensor", "-o", out], "missing.png", "missing")
    good = os.path.join(d, "good.png")
    Image.fromarray(a).save(good)
    for spec, token in [("resize(256", "resize(256"), ("resize(abc)", "resize(abc)"), ("frobnicate", "frobnicate"),
                        ("resize(256,trilinear)", "trilinear"), ("center_crop(0)", "center_crop(0)"),
                        ("normalize(1,2,3)", "normalize(1,2,3)"), ("resize(256),,to_tensor", "empty op"),
                        ("resize(256,foo=1)", "foo"), ("to_tensor,", "trailing")]:
        expect_error(["-i", good, "-t", spec, "-o", out], token, spec)

print("bad images:", "FAILED" if fails else "ok")
sys.exit(1 if fails else 0)
