"""The random transforms' parameter distributions against the ones torchvision 0.14 defines.

cvision's random ops draw from a counter-based generator, not torch's, so single samples differ
from torchvision's; the distributions must not. build/tools/tfparams_tool applies a pipeline to a
small image for sample seeds 0..N-1 and prints the parameters each random op drew (src/data/tf_ops.c
lists the layout), through the same code path as a real sample. Against them, with fixed seeds (the
test is deterministic) and alpha = 0.001 everywhere:
  * ColorJitter(0.4, 0.3, 0.5, 0.1) and ColorJitter(1.5): each factor one-sample Kolmogorov-Smirnov
    against its uniform range (brightness U(max(0, 1 - b), 1 + b), hue U(-h, h)), two-sample KS
    against ColorJitter.get_params, and the op order chi-square against all 24 permutations equally
    likely (and which op comes first against get_params' counts);
  * RandomAffine(30, translate=(0.1, 0.2), scale=(0.8, 1.2), shear=(-10, 15)) on 200x100: angle,
    scale, shear KS against their uniforms; translations chi-square against the exact law of
    round(U(-0.1 * 200, 0.1 * 200)) and round(U(-0.2 * 100, ...)) (Python's round, half to even);
  * RandomErasing(p=0.5) on 40x30: how often it erases (binomial), the erased area and aspect
    ratio against RandomErasing.get_params (two-sample KS), the box position (randomized PIT to
    U(0, 1), KS) and the value (value=random: the erased pixels against N(0, 1); value=v: all v);
  * AutoAugment(IMAGENET): the sub-policy uniform over 25 (chi-square), each sub-policy op applied
    with its table probability (chi-square summed over the 50 ops), magnitudes exactly
    torchvision's table values for that op (so the policy table and its order are torchvision's),
    signs of the signed ops balanced (binomial);
  * RandAugment(2, 9) and TrivialAugmentWide on 40x30: op uniform over the 14 (chi-square), bin
    uniform over 31 (TrivialAugmentWide), magnitudes exactly torchvision's tables (TranslateX
    scaled by the width, TranslateY by the height), balanced signs;
  * AugMix(severity 3, width 3, alpha 1 and 0.5): the mixing weight m ~ Beta(alpha, alpha) and each
    chain weight ~ Beta(alpha, 2 alpha) (the Dirichlet marginals; KS), chain depth uniform on 1..3,
    op uniform over 13, bin uniform below the severity (chi-square), magnitudes exact.

Power: every KS and chi-square statistic is also computed against a slightly wrong reference (a
range 10-20% off, a probability table shifted by 0.1, a Beta parameter doubled) and must reject it,
so none of these checks can pass vacuously. Each test was also run once against a deliberately
broken build (ColorJitter brightness drawn from U(1 - b, 1 + 1.2 b); RandomErasing scale upper
bound 0.4 instead of 0.33; AugMix weights Dirichlet(2 alpha)) and failed; those variants are not
committed. Runtime: a few seconds."""
import math, os, subprocess, sys, tempfile
import numpy as np
from scipy import stats
import torch
import torchvision.transforms as T
from PIL import Image

CVISION = os.environ["CVISION"]
TOOL = os.path.join(os.path.dirname(os.path.abspath(CVISION)), "tools", "tfparams_tool")
ALPHA = 1e-3
fails = checks = 0


def check(cond, what):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", what)


def draws(pipeline, w, h, n):
    r = subprocess.run([TOOL, pipeline, str(w), str(h), str(n)], capture_output=True, text=True, timeout=300)
    if r.returncode:
        sys.exit(f"tfparams_tool {pipeline}: {r.stderr.strip()}")
    return [[float(x) for x in line.split()] for line in r.stdout.splitlines()]


def ks1(x, cdf, what, wrong_cdf):
    """One-sample KS: accepts the right law, rejects the wrong one."""
    p = stats.kstest(x, cdf).pvalue
    check(p > ALPHA, f"{what}: KS p = {p:.2e}")
    check(stats.kstest(x, wrong_cdf).pvalue < ALPHA, f"{what}: KS cannot tell the wrong law")


def ks2(x, y, what, y_wrong=None):
    p = stats.ks_2samp(x, y).pvalue
    check(p > ALPHA, f"{what}: two-sample KS p = {p:.2e}")
    if y_wrong is not None:
        check(stats.ks_2samp(x, y_wrong).pvalue < ALPHA, f"{what}: two-sample KS cannot tell the wrong law")


def chi2(counts, probs, what, wrong_probs=None):
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    exp = probs / probs.sum() * counts.sum()
    p = stats.chisquare(counts, exp).pvalue
    check(p > ALPHA, f"{what}: chi-square p = {p:.2e}")
    if wrong_probs is not None:
        wrong = np.asarray(wrong_probs, float)
        check(stats.chisquare(counts, wrong / wrong.sum() * counts.sum()).pvalue < ALPHA,
              f"{what}: chi-square cannot tell the wrong law")


def binom(k, n, p, what):
    pv = stats.binomtest(int(k), int(n), p).pvalue
    check(pv > ALPHA, f"{what}: {k}/{n} against p = {p}: binomial p = {pv:.2e}")


def uniform(lo, hi):
    return stats.uniform(lo, hi - lo).cdf


# ---------------- ColorJitter ----------------
N = 4000
torch.manual_seed(0)
d = np.array(draws("color_jitter(0.4,0.3,0.5,0.1)", 16, 16, N))
order, f = d[:, :4].astype(int), d[:, 4:]
ranges = [(0.6, 1.4), (0.7, 1.3), (0.5, 1.5), (-0.1, 0.1)]
tv = [T.ColorJitter.get_params(*ranges) for _ in range(N)]
tv_f = np.array([[float(t[k]) for k in range(1, 5)] for t in tv])
for k, (name, (lo, hi)) in enumerate(zip(["brightness", "contrast", "saturation", "hue"], ranges)):
    ks1(f[:, k], uniform(lo, hi), f"color_jitter {name}", uniform(lo, hi + 0.15 * (hi - lo)))
    ks2(f[:, k], tv_f[:, k], f"color_jitter {name} vs get_params")
perm_ids = {p: i for i, p in enumerate(__import__("itertools").permutations(range(4)))}
counts = np.bincount([perm_ids[tuple(o)] for o in order], minlength=24)
chi2(counts, np.ones(24), "color_jitter order (24 permutations)", np.r_[np.full(12, 1.2), np.full(12, 0.8)])
first = np.bincount(order[:, 0], minlength=4)
tv_first = np.bincount([int(t[0][0]) for t in tv], minlength=4)
p = stats.chi2_contingency(np.vstack([first, tv_first]))[1]
check(p > ALPHA, f"color_jitter first op vs get_params: p = {p:.2e}")
# brightness > 1: the lower end is clamped at 0
b = np.array(draws("color_jitter(1.5)", 16, 16, N))[:, 4]
ks1(b, uniform(0.0, 2.5), "color_jitter(1.5) brightness", uniform(-0.5, 2.5))

# ---------------- RandomAffine ----------------
W, H = 200, 100
a = np.array(draws("random_affine(30,translate=0.1:0.2,scale=0.8:1.2,shear=-10:15)", W, H, N))
ks1(a[:, 0], uniform(-30, 30), "random_affine angle", uniform(-30, 36))
ks1(a[:, 3], uniform(0.8, 1.2), "random_affine scale", uniform(0.8, 1.25))
ks1(a[:, 4], uniform(-10, 15), "random_affine shear", uniform(-10, 18))


def round_uniform_pmf(m):
    """P(round(U(-m, m)) = k) for k = -ceil(m) .. ceil(m): the length of [k - 1/2, k + 1/2] in [-m, m]."""
    ks = np.arange(-math.ceil(m), math.ceil(m) + 1)
    return ks, np.clip(np.minimum(ks + 0.5, m) - np.maximum(ks - 0.5, -m), 0, None) / (2 * m)


for col, m, name in [(1, 0.1 * W, "tx"), (2, 0.2 * H, "ty")]:
    ks_, pmf = round_uniform_pmf(m)
    v = a[:, col].astype(int)
    check(v.min() >= ks_[0] and v.max() <= ks_[-1], f"random_affine {name} range {v.min()}..{v.max()}")
    counts = np.array([(v == k).sum() for k in ks_])
    _, wrong = round_uniform_pmf(m * 0.85)
    wrong = np.r_[np.zeros((len(pmf) - len(wrong)) // 2), wrong, np.zeros((len(pmf) - len(wrong)) // 2)] + 1e-3
    chi2(counts, pmf, f"random_affine {name}", wrong)
tv_a = [T.RandomAffine.get_params((-30.0, 30.0), (0.1, 0.2), (0.8, 1.2), (-10.0, 15.0), [W, H]) for _ in range(N)]
ks2(a[:, 1], [t[1][0] for t in tv_a], "random_affine tx vs get_params")
ks2(a[:, 2], [t[1][1] for t in tv_a], "random_affine ty vs get_params")

# ---------------- RandomErasing ----------------
W, H = 40, 30
e = draws("to_tensor,random_erasing(p=0.5,scale=0.02:0.33,ratio=0.3:3.3)", W, H, N)
binom(sum(r[0] for r in e), N, 0.5, "random_erasing applied")
boxes = np.array([r[1:5] for r in e if len(r) == 5])  # h, w, top, left (a 1 alone: no box found)


def tv_boxes(scale, n):
    out, img = [], torch.zeros(3, H, W)
    for _ in range(n):
        i, j, h, w, _ = T.RandomErasing.get_params(img, scale=scale, ratio=(0.3, 3.3), value=[0])
        if not (h == H and w == W):
            out.append((h, w, i, j))
    return np.array(out, float)


torch.manual_seed(1)
ref, ref_wrong = tv_boxes((0.02, 0.33), N), tv_boxes((0.02, 0.4), N)
ks2(boxes[:, 0] * boxes[:, 1], ref[:, 0] * ref[:, 1], "random_erasing area", ref_wrong[:, 0] * ref_wrong[:, 1])
ks2(np.log(boxes[:, 0] / boxes[:, 1]), np.log(ref[:, 0] / ref[:, 1]), "random_erasing log aspect")
jit = np.random.default_rng(0).uniform(size=(len(boxes), 2))
for k, (col, size) in enumerate([(2, H), (3, W)]):
    u = (boxes[:, col] + jit[:, k]) / (size - boxes[:, col - 2] + 1)  # uniform on [0, 1) under H0
    ks1(u, uniform(0, 1), f"random_erasing {'top' if col == 2 else 'left'} position", uniform(0, 1.2))
# the value: N(0, 1) for value=random, the given value otherwise (cvision transform on a flat image)
with tempfile.TemporaryDirectory() as tmp:
    src, out = os.path.join(tmp, "flat.png"), os.path.join(tmp, "o.npy")
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(src)
    vals = []
    for seed in range(20):
        subprocess.run([CVISION, "transform", "-i", src, "-t", "to_tensor,random_erasing(p=1,value=random)",
                        "-o", out, "--seed", str(seed)], check=True, capture_output=True)
        x = np.load(out)
        vals.append(x[x != np.float32(128 / 255)])
    vals = np.concatenate(vals)
    ks1(vals, stats.norm.cdf, f"random_erasing random value ({len(vals)} pixels)", stats.norm(0, 1.1).cdf)
    subprocess.run([CVISION, "transform", "-i", src, "-t", "to_tensor,random_erasing(p=1,value=0.25)",
                    "-o", out, "--seed", "3"], check=True, capture_output=True)
    x = np.load(out)
    changed = x[x != np.float32(128 / 255)]
    check(changed.size > 0 and np.all(changed == np.float32(0.25)), "random_erasing value=0.25")

# ---------------- AutoAugment (ImageNet policy) ----------------
W, H = 32, 32
aa = T.AutoAugment(T.AutoAugmentPolicy.IMAGENET)
space = aa._augmentation_space(10, (H, W))
NA = 5000
d = draws("autoaugment", W, H, NA)
pol = np.array([int(r[0]) for r in d])
chi2(np.bincount(pol, minlength=25), np.ones(25), "autoaugment sub-policy", np.r_[np.full(5, 2.0), np.ones(20)])
applied = np.zeros((25, 2))
stat = stat_wrong = 0.0
dof = 0
bad_mag, signs = [], {True: 0, False: 0}
for r in d:
    pid, rest = int(r[0]), r[1:]
    k = 0
    for slot in range(2):
        on = int(rest[k]); k += 1
        if not on:
            continue
        applied[pid, slot] += 1
        mag = rest[k]; k += 1
        name, _, bin_ = aa.policies[pid][slot]
        mags, signed = space[name]
        want = float(mags[bin_].item()) if bin_ is not None and mags.ndim > 0 else 0.0
        if abs(abs(mag) - abs(want)) > 1e-6 * max(1.0, abs(want)) or (mag < 0 and not signed):
            bad_mag.append((pid, slot, name, mag, want))
        if signed and want != 0:
            signs[mag < 0] += 1
check(not bad_mag, f"autoaugment magnitudes differ from torchvision's table: {bad_mag[:3]}")
npol = np.bincount(pol, minlength=25)
for pid in range(25):
    for slot in range(2):
        p = aa.policies[pid][slot][1]
        if 0 < p < 1:
            stat += (applied[pid, slot] - npol[pid] * p) ** 2 / (npol[pid] * p * (1 - p))
            q = min(p + 0.1, 0.95)
            stat_wrong += (applied[pid, slot] - npol[pid] * q) ** 2 / (npol[pid] * q * (1 - q))
            dof += 1
        else:
            check(applied[pid, slot] == npol[pid] * p, f"autoaugment policy {pid} op {slot}: p = {p}")
check(stats.chi2.sf(stat, dof) > ALPHA, f"autoaugment op probabilities: chi-square {stat:.1f} on {dof} dof")
check(stats.chi2.sf(stat_wrong, dof) < ALPHA, "autoaugment op probabilities: cannot tell a table off by 0.1")
binom(signs[True], signs[True] + signs[False], 0.5, "autoaugment negative signs")


# ---------------- RandAugment, TrivialAugmentWide ----------------
def check_ops(rows, space_, what, bins=None, fixed_bin=None):
    names = list(space_.keys())
    ops = np.array([int(v) for r in rows for v in r[0::3]])
    bs = np.array([int(v) for r in rows for v in r[1::3]])
    mags = np.array([v for r in rows for v in r[2::3]])
    chi2(np.bincount(ops, minlength=len(names)), np.ones(len(names)), f"{what} op choice",
         np.r_[np.full(3, 1.5), np.ones(len(names) - 3)])
    if bins:
        chi2(np.bincount(bs, minlength=bins), np.ones(bins), f"{what} magnitude bin",
             np.r_[np.full(bins // 2, 1.2), np.ones(bins - bins // 2)])
    bad, neg, nsigned = [], 0, 0
    for o, b_, m in zip(ops, bs, mags):
        table, signed = space_[names[o]]
        want = float(table[fixed_bin if fixed_bin is not None else b_].item()) if table.ndim > 0 else 0.0
        if abs(abs(m) - abs(want)) > 1e-6 * max(1.0, abs(want)) or (m < 0 and not signed):
            bad.append((names[o], b_, m, want))
        if signed and want != 0:
            nsigned += 1
            neg += m < 0
    check(not bad, f"{what} magnitudes differ from torchvision's table: {bad[:3]}")
    binom(neg, nsigned, 0.5, f"{what} negative signs")


W, H = 40, 30
ra = T.RandAugment(2, 9)
check_ops(draws("randaugment(2,9)", W, H, 3000), ra._augmentation_space(31, (H, W)), "randaugment", fixed_bin=9)
check_ops(draws("trivialaugment", W, H, 6000), T.TrivialAugmentWide()._augmentation_space(31), "trivialaugment",
          bins=31)

# ---------------- AugMix ----------------
am = T.AugMix()
am_space = am._augmentation_space(10, (H, W))
names = list(am_space.keys())
for alpha in (1.0, 0.5):
    rows = draws(f"augmix(alpha={alpha})", W, H, 3000)
    m0 = np.array([r[0] for r in rows])
    cw = np.array([r[1:4] for r in rows])
    check(np.allclose(cw.sum(1), 1, atol=1e-5), f"augmix alpha={alpha}: chain weights sum to 1")
    ks1(m0, stats.beta(alpha, alpha).cdf, f"augmix alpha={alpha} m", stats.beta(2 * alpha, 2 * alpha).cdf)
    ks1(cw[:, 0], stats.beta(alpha, 2 * alpha).cdf, f"augmix alpha={alpha} chain weight",
        stats.beta(2 * alpha, 4 * alpha).cdf)
    depths, chains = [], []
    for r in rows:
        k = 4
        for _ in range(3):
            dpt = int(r[k]); k += 1
            depths.append(dpt)
            chains.append(r[k:k + 3 * dpt])
            k += 3 * dpt
    chi2(np.bincount(depths, minlength=4)[1:], np.ones(3), f"augmix alpha={alpha} depth", [1.2, 1, 0.8])
    if alpha == 1.0:
        check_ops(chains, am_space, "augmix", bins=3)

print(f"random parameters: {checks - fails}/{checks} checks passed")
sys.exit(1 if fails else 0)
