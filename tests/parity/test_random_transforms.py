"""Random transforms, checked statistically against torchvision's own samplers.

cvision draws from a counter-based generator (not torch's), so samples cannot be equal; their
distributions must be. The input image encodes coordinates (R = 4x, G = 4y), so the crop a
RandomResizedCrop chose can be read back from the output's corner pixels (nearest resize to a size
>= the image keeps the crop's first and last rows/columns). With N samples per side:
  * RandomResizedCrop area fraction and log aspect ratio: two-sample Kolmogorov-Smirnov distance
    against torchvision's RandomResizedCrop.get_params below the alpha = 0.001 critical value;
  * RandomHorizontalFlip(0.5) frequency within 4 standard errors of 0.5;
  * the same seed gives the same output; different seeds give different outputs."""
import math, os, subprocess, sys, tempfile
import numpy as np
import torch
from PIL import Image
import torchvision.transforms as T

CV = os.environ["CVISION"]
N = 400
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)


def ks(a, b):
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)).max()


def ks_crit(n, m, alpha=0.001):
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


with tempfile.TemporaryDirectory() as d:
    W, H = 60, 45
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([x * 4, y * 4, np.full_like(x, 7)], -1).astype(np.uint8)
    p = os.path.join(d, "coords.png")
    Image.fromarray(img).save(p)
    out = os.path.join(d, "o.npy")

    def cv(spec, seed):
        r = subprocess.run([CV, "transform", "-i", p, "-t", spec, "-o", out, "--seed", str(seed)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise SystemExit("cvision failed: " + r.stderr)
        return np.round(np.load(out) * 255).astype(int)

    S = 64
    areas, logr = [], []
    for seed in range(N):
        o = cv(f"rrc({S},nearest,scale=0.08:1,ratio=0.75:1.3333333)", seed)
        j, i = o[0, 0, 0] // 4, o[1, 0, 0] // 4
        w, h = o[0, -1, -1] // 4 - j + 1, o[1, -1, -1] // 4 - i + 1
        areas.append(w * h / (W * H))
        logr.append(math.log(w / h))
    torch.manual_seed(0)
    pil = Image.fromarray(img)
    ref = [T.RandomResizedCrop.get_params(pil, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(4 * N)]
    ref_area = [h * w / (W * H) for _, _, h, w in ref]
    ref_logr = [math.log(w / h) for _, _, h, w in ref]
    crit = ks_crit(N, 4 * N)
    da, dr = ks(areas, ref_area), ks(logr, ref_logr)
    print(f"rrc area KS {da:.3f}, log-aspect KS {dr:.3f} (critical {crit:.3f}); "
          f"mean area {np.mean(areas):.3f} vs {np.mean(ref_area):.3f}")
    check(da < crit, f"rrc area distribution differs (KS {da:.3f} >= {crit:.3f})")
    check(dr < crit, f"rrc log-aspect distribution differs (KS {dr:.3f} >= {crit:.3f})")

    flips = sum(cv("hflip", seed)[0, 0, 0] != 0 for seed in range(N))
    se = math.sqrt(0.25 / N)
    print(f"hflip frequency {flips / N:.3f}")
    check(abs(flips / N - 0.5) < 4 * se, f"hflip frequency {flips / N:.3f}")

    spec = "rrc(32),hflip,randaugment(2,9),color_jitter(0.4,0.4,0.4,0.1),to_tensor,random_erasing(0.5)"
    a, b, c = cv(spec, 123), cv(spec, 123), cv(spec, 124)
    check(np.array_equal(a, b), "same seed, different output")
    check(not np.array_equal(a, c), "different seeds, same output")

print("random transforms:", "FAILED" if fails else "ok")
sys.exit(1 if fails else 0)
