"""Decoding and the inference preset against Pillow + torchvision 0.14 (PIL path).

Images are written by PIL into a temp dir: noise and smooth gradients at odd sizes, gray, RGBA,
palette, 1/2/4/16-bit, interlaced PNGs, and JPEGs at several qualities/subsamplings (gray, progressive,
CMYK too). Checks:
  * decoding: cvision's pixels == np.array(Image.open(p).convert("RGB" | "L")) exactly
    (same libjpeg-turbo as Pillow, accurate IDCT), 16-bit gray PNG (Pillow's mode I, clipped) too;
  * Resize(r, interp) + CenterCrop(c) + ToTensor + Normalize(imagenet), for nearest, bilinear,
    bicubic (and box/hamming/lanczos on the PIL path) and several (r, c) pairs, through both the
    pipeline string and the classification() preset op: max|diff| <= 1e-4 * value range, and the
    uint8 values recovered from both sides are identical (the uint8 stage is bit-exact)."""
import os, subprocess, sys, tempfile
import numpy as np
from PIL import Image
import torch
import torchvision.transforms as T

CV = os.environ["CVISION"]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
INTERP = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
          "bicubic": T.InterpolationMode.BICUBIC, "box": T.InterpolationMode.BOX,
          "hamming": T.InterpolationMode.HAMMING, "lanczos": T.InterpolationMode.LANCZOS}
fails, checks = 0, 0
rng = np.random.default_rng(1234)


def check(cond, what):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", what)


def cvt(path, spec, channels=3):
    out = path + ".out.npy"
    r = subprocess.run([CV, "transform", "-i", path, "-t", spec, "-o", out, "--channels", str(channels)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        return None, r.stderr.strip()
    return np.load(out), ""


def noise(w, h, c):
    return rng.integers(0, 256, (h, w, c), dtype=np.uint8)


def gradient(w, h, c):
    y, x = np.mgrid[0:h, 0:w]
    chans = [(x * 255.0 / max(w - 1, 1)), (y * 255.0 / max(h - 1, 1)), ((x + y) * 127.0 / max(w + h - 2, 1))]
    a = np.stack(chans[:c], -1) + rng.normal(0, 2, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)


with tempfile.TemporaryDirectory() as d:
    imgs = []  # (path, PIL image as PIL reads it back)

    def add(name, im, **kw):
        p = os.path.join(d, name)
        im.save(p, **kw)
        imgs.append(p)

    for w, h in [(193, 161), (500, 375), (37, 1000), (3, 7), (256, 256), (1000, 37)]:
        add(f"noise_{w}x{h}.png", Image.fromarray(noise(w, h, 3)))
        add(f"grad_{w}x{h}.png", Image.fromarray(gradient(w, h, 3)))
    add("gray.png", Image.fromarray(noise(151, 97, 1)[:, :, 0], "L"))
    add("rgba.png", Image.fromarray(noise(120, 90, 4), "RGBA"))
    add("la.png", Image.fromarray(noise(63, 45, 2), "LA"))
    add("palette.png", Image.fromarray(gradient(99, 77, 3)).convert("P", palette=Image.ADAPTIVE, colors=50))
    pt = Image.fromarray(gradient(64, 48, 3)).convert("P", palette=Image.ADAPTIVE, colors=16)
    add("palette_trns.png", pt, transparency=3)
    add("palette4.png", pt, bits=4)
    add("bilevel.png", Image.fromarray(noise(77, 33, 1)[:, :, 0] > 127))
    for q, ss in [(95, 0), (75, 1), (50, 2), (90, 2)]:
        add(f"photo_q{q}_s{ss}.jpg", Image.fromarray(gradient(333, 250, 3)), quality=q, subsampling=ss)
    add("noise.jpg", Image.fromarray(noise(101, 67, 3)), quality=85)
    add("gray.jpg", Image.fromarray(gradient(90, 120, 1)[:, :, 0], "L"), quality=80)
    add("progressive.jpg", Image.fromarray(gradient(215, 143, 3)), quality=80, progressive=True)
    add("cmyk.jpg", Image.fromarray(noise(40, 30, 4), "CMYK"), quality=90)
    add("odd.ppm", Image.fromarray(noise(17, 11, 3)))
    add("odd.pgm", Image.fromarray(noise(17, 11, 1)[:, :, 0], "L"))

    # PNG variants Pillow cannot write: written with raw chunks through zlib.
    import struct, zlib

    def png_raw(name, w, h, depth, ctype, rows, interlace=0):
        def chunk(t, data):
            return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)
        ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
        raw = b"".join(b"\x00" + r for r in rows)
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        return p

    a16 = rng.integers(0, 65536, (23, 31, 3), dtype=np.uint16)
    imgs.append(png_raw("rgb16.png", 31, 23, 16, 2, [r.astype(">u2").tobytes() for r in a16]))
    g2 = rng.integers(0, 4, (19, 40), dtype=np.uint8)
    imgs.append(png_raw("gray2.png", 40, 19, 2, 0, [np.packbits(np.unpackbits(r[:, None], axis=1)[:, 6:].ravel()).tobytes() for r in g2]))
    g4 = rng.integers(0, 16, (19, 41), dtype=np.uint8)
    imgs.append(png_raw("gray4.png", 41, 19, 4, 0, [np.packbits(np.unpackbits(r[:, None], axis=1)[:, 4:].ravel()).tobytes() for r in g4]))
    # Interlaced (Adam7; Pillow cannot write it): the seven passes built by hand.
    ai = gradient(29, 21, 3)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = []
    for x0, y0, dx, dy in passes:
        sub = ai[y0::dy, x0::dx]
        if sub.size:
            rows += [r.tobytes() for r in sub]
    imgs.append(png_raw("interlaced.png", 29, 21, 8, 2, rows, interlace=1))
    # 16-bit gray: Pillow opens it as mode "I"; convert() clips values to 255 (not the high byte)
    g16 = rng.integers(0, 65536, (13, 17), dtype=np.uint16)
    g16[:6] = rng.integers(0, 300, (6, 17))
    g16[0, :4] = [0, 255, 256, 65535]
    imgs.append(png_raw("gray16.png", 17, 13, 16, 0, [r.astype(">u2").tobytes() for r in g16]))
    # 16-bit gray + alpha: Pillow reads it as RGBA from the high bytes
    ga16 = rng.integers(0, 65536, (9, 11, 2), dtype=np.uint16)
    imgs.append(png_raw("graya16.png", 11, 9, 16, 4, [r.astype(">u2").tobytes() for r in ga16]))

    # ---- decoding ----
    for p in imgs:
        for mode, ch in [("RGB", 3), ("L", 1)]:
            ref = np.array(Image.open(p).convert(mode))
            if ref.ndim == 2:
                ref = ref[:, :, None]
            got, err = cvt(p, "to_tensor", ch)
            if got is None:
                check(False, f"decode {os.path.basename(p)} {mode}: {err}")
                continue
            got = np.round(got.transpose(1, 2, 0) * 255).astype(np.int64)
            ok = got.shape == ref.shape and np.array_equal(got, ref)
            check(ok, f"decode {os.path.basename(p)} {mode}: shape {got.shape} vs {ref.shape}, "
                      f"max diff {np.abs(got - ref).max() if got.shape == ref.shape else '-'}")
    # as stored (--channels 0): a 16-bit gray PNG stays one channel
    got, err = cvt(os.path.join(d, "gray16.png"), "to_tensor", 0)
    check(got is not None and np.array_equal(np.round(got[0] * 255).astype(np.int64), np.minimum(g16, 255)),
          f"gray16 as stored: {err}")

    # ---- the classification preset ----
    pairs = [(256, 224), (232, 224), (342, 299), (160, 224), (7, 5), (64, 64)]
    tol = 1e-4 * (1.0 / min(STD))  # the normalised value range is 1/std wide
    stdv, meanv = np.array(STD)[:, None, None], np.array(MEAN)[:, None, None]
    for k, p in enumerate(imgs):
        pil = Image.open(p).convert("RGB")
        # Every image sees every interpolation; the (resize, crop) pairs rotate over the images so
        # that each pair meets each kind of image while keeping the CLI calls few.
        for interp in ["bilinear", "bicubic", "nearest"] + (["box", "hamming", "lanczos"] if "grad_193" in p else []):
            for r, c in [pairs[k % len(pairs)], pairs[(k + 2) % len(pairs)]]:
                ref = T.Compose([T.Resize(r, interpolation=INTERP[interp]), T.CenterCrop(c), T.ToTensor(),
                                 T.Normalize(MEAN, STD)])(pil).numpy()
                specs = [f"resize({r},{interp}),center_crop({c}),to_tensor,normalize(imagenet)"]
                if interp in ("bilinear", "bicubic", "nearest") and (r, c) == pairs[k % len(pairs)]:
                    specs.append(f"classification({r},{c},{interp})")
                for spec in specs:
                    got, err = cvt(p, spec)
                    if got is None or got.shape != ref.shape:
                        check(False, f"{os.path.basename(p)} {spec}: {err or got.shape}")
                        continue
                    dmax = np.abs(got - ref).max()
                    u_got = np.round((got * stdv + meanv) * 255)
                    u_ref = np.round((ref * stdv + meanv) * 255)
                    check(dmax <= tol and np.array_equal(u_got, u_ref),
                          f"{os.path.basename(p)} {spec}: max|diff| {dmax:.3g}, uint8 mismatches "
                          f"{int((u_got != u_ref).sum())}")
    # Two-size resize and a gray image kept gray.
    pil = Image.open(imgs[0]).convert("RGB")
    ref = T.Compose([T.Resize((100, 150)), T.ToTensor()])(pil).numpy()
    got, err = cvt(imgs[0], "resize(100,150),to_tensor")
    check(got is not None and np.abs(got - ref).max() == 0, f"resize(h,w): {err}")
    gp = os.path.join(d, "gray.png")
    ref = T.Compose([T.Resize(50, interpolation=INTERP["bicubic"]), T.CenterCrop(40), T.ToTensor()])(Image.open(gp)).numpy()
    got, err = cvt(gp, "resize(50,bicubic),center_crop(40)", 0)
    check(got is not None and got.shape == ref.shape and np.abs(got - ref).max() == 0, f"gray pipeline: {err}")

print(f"preprocess parity: {checks - fails}/{checks} checks passed")
sys.exit(1 if fails else 0)
