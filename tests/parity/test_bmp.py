"""BMP decoding against Pillow 9.4: cvision's pixels == np.array(Image.open(p).convert("RGB" | "L"))
exactly, on BMPs written by PIL (24-bit, 8-bit paletted and gray, 1-bit) and by hand (the layouts
PIL does not write: top-down, 32-bit BI_RGB and BI_BITFIELDS in BGRA/RGBA/XBGR order, V4/V5
headers, OS/2 core headers with 3-byte palettes, 4-bit, 16-bit 5-5-5 and 5-6-5, short palettes with out-of-range indices,
a zero pixel-data offset, odd widths whose rows are padded), at odd sizes. Unsupported layouts
(RLE, 2-bit, other bit masks) and damaged files must fail with one line naming the file."""
import io, os, struct, subprocess, sys, tempfile
import numpy as np
from PIL import Image

CV = os.environ["CVISION"]
rng = np.random.default_rng(7)
fails = checks = 0


def check(cond, what):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", what)


def cvt(path, channels):
    out = path + ".npy"
    r = subprocess.run([CV, "transform", "-i", path, "-t", "to_tensor", "-o", out, "--channels", str(channels)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        return None, r.stderr.strip()
    return np.round(np.load(out).transpose(1, 2, 0) * 255).astype(np.int64), ""


def bmp(w, h, bits, rows, header=40, palette=b"", compression=0, masks=None, topdown=False,
        colors=0, offset=None):
    """A BMP from raw rows (top to bottom; padded to 4 bytes here, stored bottom-up unless topdown)."""
    stride = ((w * bits + 31) >> 3) & ~3
    data = b"".join(r.ljust(stride, b"\0") for r in (rows if topdown else rows[::-1]))
    if header == 12:
        hdr = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hdr = struct.pack("<IiiHHIIiiII", header, w, -h if topdown else h, 1, bits, compression,
                          len(data), 2835, 2835, colors, 0)
        if header > 40:
            m = masks or (0, 0, 0, 0)
            hdr += struct.pack("<IIII", *m) + b"\0" * (header - 56)
    extra = b""
    if header == 40 and compression == 3:
        extra = struct.pack("<III", *masks[:3])
    off = 14 + len(hdr) + len(extra) + len(palette) if offset is None else offset
    return b"BM" + struct.pack("<IHHI", 14 + len(hdr) + len(extra) + len(palette) + len(data), 0, 0, off) + \
        hdr + extra + palette + data


def pack(idx, bits):
    """Packs one row of palette indices MSB first."""
    per = 8 // bits
    out = bytearray((len(idx) + per - 1) // per)
    for x, v in enumerate(idx):
        out[x // per] |= int(v) << (8 - bits * (x % per + 1))
    return bytes(out)


with tempfile.TemporaryDirectory() as d:
    files = {}

    def add(name, blob):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(blob)
        files[name] = p

    def pil(name, im):
        b = io.BytesIO()
        im.save(b, "BMP")
        add(name, b.getvalue())

    a = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    pil("pil_rgb.bmp", Image.fromarray(a))
    pil("pil_gray.bmp", Image.fromarray(a[:, :, 0], "L"))
    pil("pil_pal.bmp", Image.fromarray(a).convert("P", palette=Image.ADAPTIVE, colors=40))
    pil("pil_1bit.bmp", Image.fromarray(a[:, :, 1] > 127))
    w, h = 13, 7
    px = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    bgr = [r[:, [2, 1, 0]].tobytes() for r in px]
    add("rgb24_topdown.bmp", bmp(w, h, 24, bgr, topdown=True))
    add("rgb24_v5.bmp", bmp(w, h, 24, bgr, header=124))
    add("rgb24_core.bmp", bmp(w, h, 24, bgr, header=12))
    add("rgb24_off0.bmp", bmp(w, h, 24, bgr, offset=0))
    add("rgb32.bmp", bmp(w, h, 32, [r[:, [2, 1, 0, 3]].tobytes() for r in px]))
    add("rgb32_topdown.bmp", bmp(w, h, 32, [r[:, [2, 1, 0, 3]].tobytes() for r in px], topdown=True))
    add("bgra32_v4.bmp", bmp(w, h, 32, [r[:, [2, 1, 0, 3]].tobytes() for r in px], header=108, compression=3,
                             masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)))
    add("rgba32_v5.bmp", bmp(w, h, 32, [r.tobytes() for r in px], header=124, compression=3,
                             masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)))
    add("xbgr32_info.bmp", bmp(w, h, 32, [r[:, [3, 2, 1, 0]].tobytes() for r in px], compression=3,
                               masks=(0xFF000000, 0xFF0000, 0xFF00)))
    p16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    add("rgb555.bmp", bmp(w, h, 16, [r.astype("<u2").tobytes() for r in p16]))
    add("rgb565_v4.bmp", bmp(w, h, 16, [r.astype("<u2").tobytes() for r in p16], header=108, compression=3,
                             masks=(0xF800, 0x7E0, 0x1F, 0)))
    add("rgb555_info_masks.bmp", bmp(w, h, 16, [r.astype("<u2").tobytes() for r in p16], compression=3,
                                     masks=(0x7C00, 0x3E0, 0x1F)))
    add("bgr24_masks.bmp", bmp(w, h, 24, bgr, compression=3, masks=(0xFF0000, 0xFF00, 0xFF)))
    for bits in (1, 4, 8):
        n = 1 << bits
        pal = rng.integers(0, 256, (n, 3), dtype=np.uint8)
        idx = rng.integers(0, n, (h, w))
        rows = [pack(r, bits) for r in idx]
        add(f"pal{bits}.bmp", bmp(w, h, bits, rows, palette=b"".join(bytes(p[::-1]) + b"\0" for p in pal)))
        add(f"pal{bits}_topdown.bmp", bmp(w, h, bits, rows, topdown=True,
                                          palette=b"".join(bytes(p[::-1]) + b"\0" for p in pal)))
        add(f"pal{bits}_core.bmp", bmp(w, h, bits, rows, header=12, palette=b"".join(bytes(p[::-1]) for p in pal)))
    # a short palette (5 colours) with indices past it: Pillow shows those as grey (i, i, i)
    pal = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    idx = rng.integers(0, 256, (h, w))
    idx[0, :5] = range(5)
    add("pal8_short.bmp", bmp(w, h, 8, [bytes(r.astype(np.uint8)) for r in idx], colors=5,
                              palette=b"".join(bytes(p[::-1]) + b"\0" for p in pal)))
    # a grey-ramp palette: Pillow's mode L (--channels 0 keeps it one channel)
    add("gray8.bmp", bmp(w, h, 8, [bytes(r.astype(np.uint8)) for r in idx],
                         palette=b"".join(bytes([i, i, i, 0]) for i in range(256))))

    for name, p in sorted(files.items()):
        for mode, ch in [("RGB", 3), ("L", 1)]:
            ref = np.array(Image.open(p).convert(mode)).astype(np.int64)
            ref = ref[:, :, None] if ref.ndim == 2 else ref
            got, err = cvt(p, ch)
            check(got is not None and got.shape == ref.shape and np.array_equal(got, ref),
                  f"{name} {mode}: {err or (got.shape, ref.shape)}")
        stored = Image.open(p).mode
        got, err = cvt(p, 0)
        check(got is not None and got.shape[2] == (1 if stored in ("L", "1") else 3), f"{name} as stored ({stored}): {err}")

    # unsupported or damaged: one line naming the file, non-zero exit
    good = open(files["rgb24_topdown.bmp"], "rb").read()
    bad = {
        "truncated.bmp": good[:-5],
        "header_only.bmp": good[:30],
        "rle8.bmp": bmp(w, h, 8, [bytes(w)] * h, compression=1, palette=bytes(1024)),
        "bits2.bmp": bmp(w, h, 2, [bytes(w)] * h),
        "bits16_masks.bmp": bmp(w, h, 16, [bytes(2 * w)] * h, compression=3, masks=(0xF00, 0xF0, 0xF)),
        "zero_width.bmp": bmp(0, h, 24, [b""] * h),
        "huge.bmp": bmp(w, h, 24, bgr)[:18] + struct.pack("<ii", 1 << 20, 1 << 20) + bmp(w, h, 24, bgr)[26:],
        "offset_past_end.bmp": good[:10] + struct.pack("<I", 1 << 30) + good[14:],
        "pal_truncated.bmp": bmp(w, h, 8, [], palette=b"")[:60],
        "header_size.bmp": good[:14] + struct.pack("<I", 77) + good[18:],
    }
    for name, blob in bad.items():
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(blob)
        r = subprocess.run([CV, "transform", "-i", p, "-t", "to_tensor", "-o", p + ".npy"],
                           capture_output=True, text=True, timeout=60)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and name in lines[0], f"{name}: rc {r.returncode} {r.stderr!r}")
        try:  # Pillow refuses them too
            Image.open(p).convert("RGB")
            check(False, f"{name}: Pillow reads it")
        except Exception:
            pass

print(f"bmp: {checks - fails}/{checks} checks passed")
sys.exit(1 if fails else 0)
