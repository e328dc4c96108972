"""Datasets against torchvision 0.14: for every dataset type the test writes small files in the real
on-disk format (random pixels, odd sizes), reads them with `cvision data export` (all samples as
one uint8 [N,H,W,C] array plus labels) and compares sample by sample, exactly, with torchvision's
dataset on the same files (or numpy parsing where torchvision reads another format or is broken).
Also: the real FashionMNIST from /usr/share/datasets/fashion-mnist, `data info` counts and
statistics against numpy, and the stratified/k-fold/multi-label splits."""
import gzip, json, os, pickle, shutil, subprocess, sys, tempfile

import numpy as np
import scipy.io
from PIL import Image
import torchvision.datasets as tvd

CV = os.environ["CVISION"]
rng = np.random.default_rng(3)
fails = 0


def run(*args):
    return subprocess.run([CV, *args], capture_output=True, text=True, timeout=120)


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what, flush=True)


def export(spec, d):
    """All samples of spec through cvision: (images [N,H,W,C] uint8, labels)."""
    x, y = os.path.join(d, "cvx.npy"), os.path.join(d, "cvy.npy")
    r = run("data", "export", spec, "--out", x, "--labels", y)
    if r.returncode:
        check(False, f"export {spec}: {r.stderr.strip()}")
        return None, None
    return np.load(x), np.load(y)


def info(spec):
    r = run("data", "info", spec, "--json")
    check(r.returncode == 0, f"info {spec}: {r.stderr.strip()}")
    return json.loads(r.stdout) if r.returncode == 0 else None


def same_as_torchvision(name, spec, ds, d):
    """Sample i of cvision's spec == ds[i] (PIL image, label) for every i."""
    x, y = export(spec, d)
    if x is None:
        return
    check(len(x) == len(ds), f"{name}: {len(x)} samples, torchvision {len(ds)}")
    for i in range(min(len(x), len(ds))):
        img, lab = ds[i]
        a = np.asarray(img)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape != x[i].shape or not np.array_equal(a, x[i]):
            check(False, f"{name}: pixels of sample {i} differ ({a.shape} vs {x[i].shape})")
            return
        if int(lab) != int(y[i]):
            check(False, f"{name}: label of sample {i}: {y[i]}, torchvision {lab}")
            return
    print(f"ok {name}: {len(x)} samples", flush=True)


def idx_bytes(a, code):
    hdr = bytes([0, 0, code, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return hdr + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path, a, code, gz=False):
    data = idx_bytes(a, code)
    if gz:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def mnist_like(root, cls, prefix, n, h, w, k, gz):
    raw = os.path.join(root, cls, "raw")
    os.makedirs(raw, exist_ok=True)
    imgs = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    labs = rng.integers(0, k, n).astype(np.uint8)
    write_idx(os.path.join(raw, f"{prefix}-images-idx3-ubyte"), imgs, 0x08, gz)
    write_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), labs, 0x08, gz)
    return imgs, labs


with tempfile.TemporaryDirectory() as d:
    # ---- the real FashionMNIST (Debian's gzipped idx files) vs torchvision on the same data ----
    src = "/usr/share/datasets/fashion-mnist"
    raw = os.path.join(d, "FashionMNIST", "raw")
    os.makedirs(raw)
    for f in os.listdir(src):
        with gzip.open(os.path.join(src, f)) as fi, open(os.path.join(raw, f[:-3]), "wb") as fo:
            shutil.copyfileobj(fi, fo)
    for train, spec, picks in ((True, "fashionmnist:train", (0, 1234, 59999)),
                               (False, "fashionmnist:test", (0, 9999))):
        tv = tvd.FashionMNIST(d, train=train)
        x, y = export(spec, d)
        check(np.array_equal(x[:, :, :, 0], tv.data.numpy()), f"{spec}: pixels")
        check(np.array_equal(y, tv.targets.numpy()), f"{spec}: labels")
        for i in picks:
            img, lab = tv[i]
            check(np.array_equal(np.asarray(img), x[i, :, :, 0]) and lab == y[i], f"{spec}[{i}]")
        js = info(spec)
        check(js["per_class_counts"] == np.bincount(y, minlength=10).tolist(), f"{spec}: counts")
        check(js["class_names"] == tv.classes, f"{spec}: class names")
        px = x.astype(np.float64) / 255
        check(abs(js["channel_mean"][0] - px.mean()) < 1e-9, f"{spec}: mean")
        check(abs(js["channel_std"][0] - px.std()) < 1e-9, f"{spec}: std")
        print(f"ok {spec}", flush=True)
    # The same files under DIR (torchvision's root layout) and a subset suffix.
    x, y = export(f"fashionmnist:{d}:test@range=10:20", d)
    check(np.array_equal(y, tvd.FashionMNIST(d, train=False).targets.numpy()[10:20]), "range suffix")

    # ---- MNIST (raw idx), KMNIST (gz idx; torchvision reads raw only -> numpy) ----
    r1 = os.path.join(d, "m1")
    mnist_like(r1, "MNIST", "train", 23, 7, 11, 10, False)
    mnist_like(r1, "MNIST", "t10k", 5, 7, 11, 10, False)
    same_as_torchvision("mnist:train", f"mnist:{r1}:train", tvd.MNIST(r1, train=True), d)
    same_as_torchvision("mnist:test", f"mnist:{r1}:test", tvd.MNIST(r1, train=False), d)
    imgs, labs = mnist_like(r1, "KMNIST", "train", 9, 28, 28, 10, True)
    x, y = export(f"kmnist:{os.path.join(r1, 'KMNIST', 'raw')}:train", d)
    check(np.array_equal(x[..., 0], imgs) and np.array_equal(y, labs), "kmnist gz")
    check(info(f"kmnist:{r1}:train")["class_names"][3] == "tsu", "kmnist classes")

    # ---- EMNIST: torchvision's orientation (as stored), class lists ----
    r2 = os.path.join(d, "e")
    for split, k in (("letters", 27), ("balanced", 47), ("byclass", 62)):
        lo = 1 if split == "letters" else 0
        raw = os.path.join(r2, "EMNIST", "raw")
        os.makedirs(raw, exist_ok=True)
        for part, n in (("train", 13), ("test", 4)):
            write_idx(os.path.join(raw, f"emnist-{split}-{part}-images-idx3-ubyte"),
                      rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 0x08)
            write_idx(os.path.join(raw, f"emnist-{split}-{part}-labels-idx1-ubyte"),
                      rng.integers(lo, k, n).astype(np.uint8), 0x08)
        for train in (True, False):
            part = "train" if train else "test"
            tv = tvd.EMNIST(r2, split=split, train=train)
            same_as_torchvision(f"emnist:{split}:{part}", f"emnist:{r2}:{split}:{part}", tv, d)
            check(info(f"emnist:{r2}:{split}:{part}")["class_names"] == tv.classes,
                  f"emnist {split} class names")

    # ---- QMNIST: int32 [N,8] labels. torchvision 0.14 mis-reads multi-byte idx data on
    # little-endian machines (it reverses elements instead of bytes), so compare with numpy. ----
    r3 = os.path.join(d, "q")
    raw = os.path.join(r3, "QMNIST", "raw")
    os.makedirs(raw)
    qi = rng.integers(0, 256, (10007, 3, 2), dtype=np.uint8)
    ql = rng.integers(0, 1000, (10007, 8)).astype(np.int32)
    ql[:, 0] = rng.integers(0, 10, 10007)
    write_idx(os.path.join(raw, "qmnist-test-images-idx3-ubyte"), qi, 0x08, True)
    write_idx(os.path.join(raw, "qmnist-test-labels-idx2-int"), ql, 0x0C, True)
    for what, sl in (("test", slice(None)), ("test10k", slice(0, 10000)), ("test50k", slice(10000, None))):
        x, y = export(f"qmnist:{r3}:{what}", d)
        check(np.array_equal(x[..., 0], qi[sl]) and np.array_equal(y, ql[sl, 0]), f"qmnist {what}")

    # ---- CIFAR-10/100: binary files for cvision; the same records as the python pickles that
    # torchvision reads (integrity checks bypassed: the files are not the real ones) ----
    r4 = os.path.join(d, "c")
    for is100 in (False, True):
        base_bin = os.path.join(r4, "cifar-100-binary" if is100 else "cifar-10-batches-bin")
        base_py = os.path.join(r4, "cifar-100-python" if is100 else "cifar-10-batches-py")
        os.makedirs(base_bin)
        os.makedirs(base_py)
        files = [("train", 7), ("test", 3)] if is100 else [(f"data_batch_{i}", 2 + i) for i in range(1, 6)] + [("test_batch", 4)]
        coarse_all, fine_all = {}, {}
        for fname, n in files:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            fine = rng.integers(0, 100 if is100 else 10, n)
            coarse = rng.integers(0, 20, n)
            cols = ([coarse[:, None], fine[:, None]] if is100 else [fine[:, None]]) + [data]
            np.concatenate(cols, axis=1).astype(np.uint8).tofile(os.path.join(base_bin, fname + ".bin"))
            d_py = {"data": data, ("fine_labels" if is100 else "labels"): fine.tolist()}
            if is100:
                d_py["coarse_labels"] = coarse.tolist()
            with open(os.path.join(base_py, fname), "wb") as f:
                pickle.dump(d_py, f)
            coarse_all[fname], fine_all[fname] = coarse, fine
        names = [f"class{i}" for i in range(100 if is100 else 10)]
        with open(os.path.join(base_py, "meta" if is100 else "batches.meta"), "wb") as f:
            pickle.dump({("fine_label_names" if is100 else "label_names"): names}, f)
        Base = tvd.CIFAR100 if is100 else tvd.CIFAR10

        class Fake(Base):
            train_list = [[f, None] for f, _ in files[:-1]]
            test_list = [[files[-1][0], None]]
            meta = dict(Base.meta, md5=None)

        kind = "cifar100" if is100 else "cifar10"
        for train in (True, False):
            part = "train" if train else "test"
            same_as_torchvision(f"{kind}:{part}", f"{kind}:{r4}:{part}", Fake(r4, train=train), d)
        if is100:
            x, y = export(f"cifar100:{base_bin}:train:coarse", d)
            check(np.array_equal(y, coarse_all["train"]), "cifar100 coarse labels")
            check(info(f"cifar100:{r4}:test")["class_names"][1] == "aquarium_fish", "cifar100 names")
        else:
            check(info(f"cifar10:{r4}:test")["class_names"][9] == "truck", "cifar10 names")

    # ---- STL10 (column-major planes, labels 1..10, folds, unlabeled) ----
    r5 = os.path.join(d, "s")
    sb = os.path.join(r5, "stl10_binary")
    os.makedirs(sb)
    for part, n in (("train", 12), ("test", 5), ("unlabeled", 4)):
        rng.integers(0, 256, n * 3 * 96 * 96, dtype=np.uint8).tofile(os.path.join(sb, f"{part}_X.bin"))
        if part != "unlabeled":
            (rng.integers(0, 10, n) + 1).astype(np.uint8).tofile(os.path.join(sb, f"{part}_y.bin"))
    with open(os.path.join(sb, "fold_indices.txt"), "w") as f:
        for k in range(10):
            f.write(" ".join(str(i) for i in rng.choice(12, 5, replace=False)) + " \n")
    with open(os.path.join(sb, "class_names.txt"), "w") as f:
        f.write("\n".join(f"c{i}" for i in range(10)) + "\n")

    class FakeSTL(tvd.STL10):
        def _check_integrity(self):
            return True

    for split, folds in (("train", None), ("test", None), ("unlabeled", None),
                         ("train+unlabeled", None), ("train", 3), ("train+unlabeled", 7)):
        spec = f"stl10:{r5}:{split}" + (f":fold={folds}" if folds is not None else "")
        same_as_torchvision(spec, spec, FakeSTL(r5, split=split, folds=folds), d)
    check(info(f"stl10:{r5}:train")["class_names"][0] == "c0", "stl10 class_names.txt")

    # ---- SVHN: .mat written by scipy (compressed and not), labels 10 -> 0 ----
    r6 = os.path.join(d, "v")
    os.makedirs(r6)
    for part, n, comp, ydt in (("train", 9, True, np.uint8), ("test", 6, False, np.float64)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(ydt)
        y[0] = 10
        scipy.io.savemat(os.path.join(r6, f"{part}_32x32.mat"), {"X": X, "y": y}, do_compression=comp)

    class FakeSVHN(tvd.SVHN):
        def _check_integrity(self):
            return True

    for part in ("train", "test"):
        same_as_torchvision(f"svhn:{part}", f"svhn:{r6}:{part}", FakeSVHN(r6, split=part), d)

    # ---- npy: NHW uint8, NHWC uint8, NCHW float in [0,1] ----
    r7 = os.path.join(d, "n")
    os.makedirs(r7)
    labs = rng.integers(0, 4, 11)
    np.save(os.path.join(r7, "y.npy"), labs)
    a3 = rng.integers(0, 256, (11, 5, 6), dtype=np.uint8)
    a4 = rng.integers(0, 256, (11, 5, 6, 3), dtype=np.uint8)
    af = rng.random((11, 3, 5, 6)).astype(np.float32)
    for name, a, want in (("nhw", a3, a3[..., None]), ("nhwc", a4, a4),
                          ("nchw", af, np.clip(np.rint(af.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8))):
        p = os.path.join(r7, name + ".npy")
        np.save(p, a)
        x, y = export(f"npy:{p},{os.path.join(r7, 'y.npy')}", d)
        check(x is not None and np.array_equal(x, want) and np.array_equal(y, labs), f"npy {name}")

    # ---- ImageFolder: class order "100" < "2" < "b", nested folders whose path order differs from a
    # depth-first walk ("a" < "a b" < "a/x" < "a0"), mixed-case extensions, gray PNGs (-> RGB), a
    # symlinked folder, non-image files ignored ----
    r8 = os.path.join(d, "f")
    def img(path, mode="RGB"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        a = rng.integers(0, 256, (6, 9, 3) if mode == "RGB" else (6, 9), dtype=np.uint8)
        Image.fromarray(a, mode).save(path, format="PNG")
    for rel in ("100/z.png", "100/a/x/1.PNG", "100/a b/2.png", "100/a/3.png", "100/a0/4.Png",
                "2/k.png", "2/B.png", "2/a.PNG", "b/deep/er/est/q.png", "ext/y.png"):
        img(os.path.join(r8, rel), "L" if "B" in rel else "RGB")
    os.makedirs(os.path.join(r8, "2", "notes"))
    open(os.path.join(r8, "2", "notes", "readme.txt"), "w").write("not an image")
    open(os.path.join(r8, "stray.png"), "wb").write(b"files at the root are not samples")
    os.symlink(os.path.join(r8, "ext"), os.path.join(r8, "b", "link"))
    same_as_torchvision("folder", f"folder:{r8}", tvd.ImageFolder(r8), d)
    check(info(f"folder:{r8}")["class_names"] == tvd.ImageFolder(r8).classes, "folder classes")
    os.makedirs(os.path.join(r8, "empty", "sub"))
    r = run("data", "info", f"folder:{r8}")
    check(r.returncode == 1 and "empty" in r.stderr and r.stderr.count("\n") == 1,
          f"empty class folder is an error: {r.stderr.strip()}")
    check(info(f"folder:{r8},allow_empty")["per_class_counts"][-2] == 0, "allow_empty")
    shutil.rmtree(os.path.join(r8, "empty"))

    # ---- CSV (Kaggle layout): numeric-aware class order, quoted fields, multi-label, ordinal ----
    r9 = os.path.join(d, "csv")
    os.makedirs(os.path.join(r9, "im"))
    ids = [f"id_{i:03d}" for i in range(14)]
    labels = ["10", "2", "0", "2", "1", "10", "0", "1", "2", "2", "0", "10", "1", "0"]
    pix = []
    for i in ids:
        a = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
        Image.fromarray(a).save(os.path.join(r9, "im", i + ".png"))
        pix.append(a)
    with open(os.path.join(r9, "train.csv"), "w") as f:
        f.write("id_code,diagnosis,tags\r\n")
        for i, l in zip(ids, labels):
            f.write(f'"{i}",{l},"a b, c"\r\n')
    x, y = export(f"csv:{r9}/train.csv,images={r9}/im,id=id_code,label=diagnosis,ext=.png", d)
    order = {"0": 0, "1": 1, "2": 2, "10": 3}
    check(x is not None and np.array_equal(x, np.stack(pix)) and
          y.tolist() == [order[l] for l in labels], "csv single-label")
    x, y = export(f"csv:{r9}/train.csv,images={r9}/im,id=id_code,label=diagnosis,ext=.png,ordinal", d)
    check(y is not None and y.tolist() == [int(l) for l in labels], "csv ordinal = grade")
    with open(os.path.join(r9, "ml.csv"), "w") as f:
        f.write("Id,Target\n")
        for k, i in enumerate(ids):
            f.write(f"{i},{' '.join(str(t) for t in sorted({k % 3, (k * 7) % 12}))}\n")
    x, y = export(f"csv:{r9}/ml.csv,images={r9}/im,id=Id,label=Target,ext=.png,multilabel", d)
    cls = sorted({t for k in range(14) for t in (k % 3, (k * 7) % 12)})
    want = np.array([[int(c in (k % 3, (k * 7) % 12)) for c in cls] for k in range(14)])
    check(y is not None and np.array_equal(y, want), "csv multi-label")
    with open(os.path.join(r9, "bad.csv"), "w") as f:
        f.write("id,label\nid_000,a\nid_001,b\nmissing_one,a\n")
    r = run("data", "info", f"csv:{r9}/bad.csv,images={r9}/im,id=id,label=label,ext=.png")
    check(r.returncode == 1 and "bad.csv:4" in r.stderr and "missing_one.png" in r.stderr,
          f"csv missing file names CSV and line: {r.stderr.strip()}")
    r = run("data", "info", f"csv:{r9}/bad.csv,images={r9}/im,id=id,label=label,ext=.png", "--skip-bad", "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["skipped"] == 1, "csv --skip-bad counts")
    r = run("data", "info", f"csv:{r9}/bad.csv,images={r9}/im,id=id,label=label,ext=.png,classes=a|c")
    check(r.returncode == 1 and "bad.csv:3" in r.stderr and "'b'" in r.stderr,
          f"label outside the class list: {r.stderr.strip()}")
    print("ok folder, csv", flush=True)

    # ---- data check: exact and near duplicates, label conflicts, leakage, unreadable files ----
    rc = os.path.join(d, "chk")

    def smooth(seed):
        g = np.random.default_rng(seed)
        a = g.random((3, 8, 8)) * 255  # low-frequency content, upsampled: distinct pHashes
        return np.kron(a, np.ones((1, 8, 8))).transpose(1, 2, 0).astype(np.uint8)

    def put(root, cls, name, a):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        Image.fromarray(a).save(os.path.join(root, cls, name + ".png"))

    A, B = os.path.join(rc, "A"), os.path.join(rc, "B")
    for i in range(40):
        put(A, f"c{i % 2}", f"s{i:02d}", smooth(i))
    put(A, "c1", "dup_of_s00", smooth(0))            # exact copy, other label (s00 is c0)
    noisy = np.clip(smooth(2).astype(int) + rng.integers(-2, 3, (64, 64, 3)), 0, 255).astype(np.uint8)
    put(A, "c0", "near_s02", noisy)                   # near copy, same label
    open(os.path.join(A, "c0", "broken.png"), "wb").write(b"\x89PNG\r\n\x1a\n garbage")
    for i in range(100, 110):
        put(B, "c0", f"t{i}", smooth(i))
    put(B, "c0", "leak_s04", smooth(4))               # exact leak, same label (s04: c0)
    put(B, "c0", "leak_s05", smooth(5))               # exact leak, other label (s05: c1)
    put(B, "c1", "nearleak_s07", np.clip(smooth(7).astype(int) + 1, 0, 255).astype(np.uint8))
    r = run("data", "check", f"folder:{A}", "--against", f"folder:{B}", "--json")
    check(r.returncode == 0, f"data check: {r.stderr.strip()}")
    if r.returncode == 0:
        j = json.loads(r.stdout)
        l = j["against"]
        got = (j["unreadable"], j["exact_duplicate_groups"], j["exact_groups_with_different_labels"],
               j["near_duplicate_pairs"], l["leaked_exact"], l["leaked_near"], l["leaked_with_different_labels"])
        check(got == (1, 1, 1, 1, 2, 1, 1), f"data check counts {got}")
        check("broken.png" in j["unreadable_samples"][0], "unreadable file named")
        check("s02" in j["near_examples"][0]["a"] + j["near_examples"][0]["b"], "near pair named")
    r = run("data", "info", f"folder:{A}")
    check(r.returncode == 1 and "broken.png" in r.stderr, f"info stops at the corrupt file: {r.stderr.strip()}")
    print("ok data check", flush=True)

    # ---- splits: stratified holdout (per class within 1 of 20%), determinism, k-fold coverage.
    # Images carry their own index (two pixels: i % 256, i // 256) so exports reveal indices. ----
    n = 1003
    sl = np.concatenate([np.zeros(500), np.ones(300), np.full(150, 2), np.full(50, 3), np.full(3, 4)]).astype(np.int64)
    rng.shuffle(sl)
    ix = np.stack([np.arange(n) % 256, np.arange(n) // 256], 1).astype(np.uint8).reshape(n, 1, 2)
    np.save(os.path.join(r7, "ix.npy"), ix)
    np.save(os.path.join(r7, "sl.npy"), sl)
    base = f"npy:{os.path.join(r7, 'ix.npy')},{os.path.join(r7, 'sl.npy')}"

    def indices(spec):
        x, y = export(spec, d)
        if x is None:
            return np.zeros(0, int)
        i = x[:, 0, 0, 0].astype(int) + 256 * x[:, 0, 1, 0].astype(int)
        check(np.array_equal(sl[i], y), f"{spec}: labels follow indices")
        return i

    sp = os.path.join(d, "split.json")
    tr, va = indices(f"{base}@split={sp}:train"), indices(f"{base}@split={sp}:val")
    check(len(set(tr)) == len(tr) and len(set(va)) == len(va) and not set(tr) & set(va)
          and len(tr) + len(va) == n, "holdout is a partition")
    check(len(va) == round(0.2 * n), f"val size {len(va)}")
    cnt = np.bincount(sl, minlength=5)
    vc = np.bincount(sl[va], minlength=5)
    check(np.all(np.abs(vc - 0.2 * cnt) < 1), f"stratified val counts {vc} vs {0.2 * cnt}")
    with open(sp) as f:
        saved = f.read()
    check(np.array_equal(va, indices(f"{base}@split={sp}:val")), "split file reused")
    sp2, sp3 = os.path.join(d, "s2.json"), os.path.join(d, "s3.json")
    indices(f"{base}@split={sp2}:val")
    with open(sp2) as f:
        check(f.read() == saved, "same seed, same split")
    v3 = indices(f"{base}@split={sp3}:val:seed=5")
    check(not np.array_equal(v3, va), "another seed, another split")
    r = run("data", "info", f"{base}@split={sp}:val:seed=5")
    check(r.returncode == 1 and "seed" in r.stderr and sp in r.stderr, "mismatched split file is an error")
    kf = os.path.join(d, "kf.json")
    folds = [indices(f"{base}@fold={kf}:5:{i}:val") for i in range(5)]
    allv = np.concatenate(folds)
    check(sorted(allv.tolist()) == list(range(n)), "k-fold: every sample in exactly one fold")
    for i, fv in enumerate(folds):
        fc = np.bincount(sl[fv], minlength=5)
        check(np.all(np.abs(fc - cnt / 5) < 1), f"fold {i} counts {fc}")
        ft = indices(f"{base}@fold={kf}:5:{i}:train")
        check(sorted(ft.tolist() + fv.tolist()) == list(range(n)), f"fold {i} train = rest")

    # Multi-label: iterative stratification keeps every label near 20% in val.
    ml = (rng.random((n, 6)) < np.array([0.5, 0.2, 0.05, 0.02, 0.3, 0.01])).astype(np.int64)
    np.save(os.path.join(r7, "ml.npy"), ml)
    mspec = f"npy:{os.path.join(r7, 'ix.npy')},{os.path.join(r7, 'ml.npy')}"
    mp = os.path.join(d, "ml.json")
    x, y = export(f"{mspec}@split={mp}:val", d)
    tot, got = ml.sum(0), y.sum(0)
    check(np.all(np.abs(got - 0.2 * tot) <= 1), f"multi-label val label counts {got} vs {0.2 * tot}")
    check(abs(len(y) - 0.2 * n) <= 2, f"multi-label val size {len(y)}")
    js = info(mspec)
    check(js["multilabel"] and js["per_class_counts"] == tot.tolist(), "multi-label counts")
    print("ok splits", flush=True)

print("failures:", fails)
sys.exit(1 if fails else 0)
