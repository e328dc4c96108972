"""Hostile dataset files (runs against the ASan/UBSan build): each must give exit status 1 and one
stderr line "cvision: ..." naming the file (and line/sample where it applies) - never a crash."""
import gzip, io, os, subprocess, sys, tempfile

import numpy as np
import scipy.io

CV = os.environ["CVISION"]
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what, flush=True)


def bad(spec, *needles, cmd="info"):
    r = subprocess.run([CV, "data", cmd, spec], capture_output=True, text=True, timeout=120)
    err = r.stderr
    ok = (r.returncode == 1 and err.startswith("cvision: ") and err.count("\n") == 1
          and "Sanitizer" not in err and all(n in err for n in needles))
    check(ok, f"{spec}: rc={r.returncode} stderr={err.strip()[:400]!r} (want {needles})")


def idx(a, code=0x08):
    return bytes([0, 0, code, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape) + \
        a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


with tempfile.TemporaryDirectory() as d:
    imgs = idx(np.zeros((4, 28, 28), np.uint8))
    labs = idx(np.array([1, 2, 3, 4], np.uint8))
    cases = {
        "magic": (b"\x00\x00\x07\x03" + imgs[4:], labs, ("images", "magic")),
        "ndim": (b"\x00\x00\x08\x09" + imgs[4:], labs, ("images", "magic")),
        "dims_exceed": (imgs[:-10], labs, ("images", "need 3136 data bytes", "3126")),
        "trailing": (imgs + b"x", labs, ("images", "3137")),
        "header": (imgs[:9], labs, ("images", "truncated")),
        "empty": (b"", labs, ("images", "truncated")),
        "huge_dims": (b"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", labs, ("images",)),
        "count": (imgs, idx(np.array([1, 2, 3], np.uint8)), ("4 images", "3 labels")),
        "label_range": (imgs, idx(np.array([1, 2, 12, 4], np.uint8)), ("labels", "label 12 of sample 2")),
        "label_type": (imgs, idx(np.array([1, 2, 3, 4], np.int32), 0x0C), ("labels", "uint8 [N]")),
    }
    for name, (im, lb, needles) in cases.items():
        root = os.path.join(d, name)
        write(os.path.join(root, "t10k-images-idx3-ubyte"), im)
        write(os.path.join(root, "t10k-labels-idx1-ubyte"), lb)
        bad(f"mnist:{root}:test", *needles)
    # gzip: truncated stream, corrupt stream, claimed dims larger than the data.
    gz = gzip.compress(imgs)
    for name, data, needle in (("gz_trunc", gz[: len(gz) // 2], "images"), ("gz_corrupt", gz[:20] + b"\xff" * 40 + gz[60:], "images"),
                               ("gz_short", gzip.compress(imgs[:-5]), "need 3136 data bytes")):
        root = os.path.join(d, name)
        write(os.path.join(root, "t10k-images-idx3-ubyte.gz"), data)
        write(os.path.join(root, "t10k-labels-idx1-ubyte"), labs)
        bad(f"fashionmnist:{root}:test", needle)
    bad(f"mnist:{d}/nothing:test", "nothing", "t10k-images-idx3-ubyte")

    # CIFAR: partial record, label out of range.
    c = os.path.join(d, "cifar")
    write(os.path.join(c, "test_batch.bin"), bytes(3073 * 2 + 100))
    bad(f"cifar10:{c}:test", "test_batch.bin", "3073-byte records")
    write(os.path.join(c, "test_batch.bin"), bytes(3073) + bytes([10]) + bytes(3072))
    bad(f"cifar10:{c}:test", "test_batch.bin[1]", "label 10")
    write(os.path.join(c, "test.bin"), bytes([19, 100]) + bytes(3072))
    bad(f"cifar100:{c}:test", "test.bin[0]", "fine label 100")

    # STL10: X not whole images, label/image count mismatch, bad fold line.
    s = os.path.join(d, "stl")
    write(os.path.join(s, "test_X.bin"), bytes(27648 + 5))
    write(os.path.join(s, "test_y.bin"), bytes([1]))
    bad(f"stl10:{s}:test", "test_X.bin", "27648-byte images")
    write(os.path.join(s, "train_X.bin"), bytes(27648 * 2))
    write(os.path.join(s, "train_y.bin"), bytes([1, 2, 3]))
    bad(f"stl10:{s}:train", "train_y.bin has 3 labels")
    write(os.path.join(s, "train_y.bin"), bytes([1, 11]))
    bad(f"stl10:{s}:train", "train_y.bin", "label 11")
    write(os.path.join(s, "train_y.bin"), bytes([1, 2]))
    write(os.path.join(s, "fold_indices.txt"), b"0 1\n0 7\n")
    bad(f"stl10:{s}:train:fold=1", "fold_indices.txt", "fold 1")

    # SVHN .mat: not a .mat, truncated, corrupt compressed element, wrong shapes, bad labels.
    v = os.path.join(d, "svhn")
    X = np.zeros((32, 32, 3, 2), np.uint8)
    good = io.BytesIO()
    scipy.io.savemat(good, {"X": X, "y": np.array([[1], [10]], np.uint8)})
    good = good.getvalue()
    comp = io.BytesIO()
    scipy.io.savemat(comp, {"X": X, "y": np.array([[1], [10]], np.uint8)}, do_compression=True)
    comp = comp.getvalue()
    mats = {
        "text": (b"hello" * 40, "not a MATLAB level-5"),
        "hdf5": (b"\x89HDF\r\n\x1a\n" + bytes(200), "not a MATLAB level-5"),
        "short": (good[:100], "too short"),
        "truncated": (good[: len(good) - 500], "overruns"),
        "zcorrupt": (comp[:140] + b"\x00" * 30 + comp[170:], "compressed"),
        "ztrunc": (comp[: len(comp) - 40], "overruns"),
    }
    for name, val in (("shape", {"X": np.zeros((32, 32, 2), np.uint8), "y": np.array([[1]], np.uint8)}),
                      ("label", {"X": X, "y": np.array([[1], [11]], np.uint8)}),
                      ("count", {"X": X, "y": np.array([[1], [2], [3]], np.uint8)}),
                      ("noy", {"X": X})):
        b = io.BytesIO()
        scipy.io.savemat(b, val)
        mats[name] = (b.getvalue(), {"shape": "X must be", "label": "y[1] = 11", "count": "y must be",
                                     "noy": "'y'"}[name])
    for name, (data, needle) in mats.items():
        write(os.path.join(v, name, "test_32x32.mat"), data)
        bad(f"svhn:{v}/{name}:test", "test_32x32.mat", needle)

    # CSV: missing file (names CSV and line), label outside the list, malformed rows.
    k = os.path.join(d, "csv")
    os.makedirs(os.path.join(k, "im"))
    from PIL import Image
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(os.path.join(k, "im", "a.png"))
    write(os.path.join(k, "im", "corrupt.png"), b"\x89PNG\r\n\x1a\nnot really")
    csvs = {
        "missing": (b"id,label\na,x\nb,y\n", "", ("missing.csv:3", "b.png")),
        "corrupt": (b"id,label\na,x\ncorrupt,y\n", "", ("corrupt.csv:3", "corrupt.png")),
        "notinlist": (b"id,label\na,x\na,z\n", ",classes=x|y", ("notinlist.csv:3", "'z'")),
        "fields": (b"id,label\na,x\na,x,extra\n", "", ("fields.csv:3", "3 fields")),
        "quote": (b'id,label\na,x\n"a,x\n', "", ("quote.csv:3", "unterminated")),
        "column": (b"name,label\na,x\n", "", ("column.csv:1", "'id'")),
        "emptylabel": (b"id,label\na,\n", "", ("emptylabel.csv:2", "empty label")),
        "ordinal": (b"id,label\na,1\na,mild\n", ",ordinal", ("ordinal.csv:3", "'mild'")),
        "binary": (b"id,label\na,\x00\n", "", ("binary.csv", "NUL")),
    }
    for name, (text, opt, needles) in csvs.items():
        write(os.path.join(k, name + ".csv"), text)
        bad(f"csv:{k}/{name}.csv,images={k}/im,id=id,label=label,ext=.png{opt}", *needles)

    # npy: negative label, images of a bad shape, length mismatch.
    n = os.path.join(d, "npy")
    os.makedirs(n)
    np.save(os.path.join(n, "x.npy"), np.zeros((3, 4, 4), np.uint8))
    np.save(os.path.join(n, "x5.npy"), np.zeros((3, 4, 4, 5), np.uint8))
    np.save(os.path.join(n, "neg.npy"), np.array([0, -1, 2]))
    np.save(os.path.join(n, "two.npy"), np.array([0, 1]))
    bad(f"npy:{n}/x.npy,{n}/neg.npy", "neg.npy", "label -1 of sample 1")
    bad(f"npy:{n}/x5.npy,{n}/two.npy", "x5.npy", "[3, 4, 4, 5]")
    bad(f"npy:{n}/x.npy,{n}/two.npy", "two.npy", "N = 3")

    # Specs, folders, split files.
    bad("nosuchtype:x", "unknown type")
    bad("fashionmnist", "TYPE:ARGS")
    bad("fashionmnist:train@first=x", "@first=N")
    bad("fashionmnist:train@bogus=1", "unknown suffix")
    bad(f"folder:{d}/nope", "nope")
    os.makedirs(os.path.join(d, "emptyroot"))
    bad(f"folder:{d}/emptyroot", "no class folders")
    sp = os.path.join(d, "split.json")
    write(sp, b'{"format":"cvision-split","folds":0,"val_fraction":0.2,"seed":"0","samples":10000,'
              b'"labels_fingerprint":"0","parts":[[0,1],[99999]]}')
    bad(f"fashionmnist:test@split={sp}:val", "split.json", "out of range")
    write(sp, b"{not json")
    bad(f"fashionmnist:test@split={sp}:val", "split.json", "JSON")
    bad(f"fashionmnist:test@fold={sp}:1:0:val", "fold count")

print("failures:", fails)
sys.exit(1 if fails else 0)
