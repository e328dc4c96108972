"""cvision's .npy reader/writer against numpy: many dtypes and shapes (0-d and empty included),
all three format versions. cvision must read what numpy writes (same statistics) and write the same
bytes np.save writes; hostile files give one clear error line."""
import json, os, subprocess, sys, tempfile
import numpy as np

CV = os.environ["CVISION"]
rng = np.random.default_rng(7)
fails = 0


def run(*args):
    return subprocess.run([CV, *args], capture_output=True, text=True, timeout=60)


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)


dtypes = ["<f4", "<f8", "<f2", "<i8", "<i4", "<i2", "|i1", "|u1", "|b1"]
shapes = [(), (0,), (3, 0, 2), (1,), (7,), (2, 3), (5, 1, 4), (2, 3, 4, 5), (1, 1, 1, 1, 1, 1, 1, 2)]
with tempfile.TemporaryDirectory() as d:
    k = 0
    for dt in dtypes:
        for shape in shapes:
            if dt == "|b1":
                a = rng.integers(0, 2, size=shape).astype(dt)
            elif dt[1] == "f":
                a = (rng.standard_normal(size=shape) * 100).astype(dt)
            else:
                info = np.iinfo(dt)
                a = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape).astype(dt)
            version = [(1, 0), (2, 0), (3, 0)][k % 3]
            k += 1
            src, out = os.path.join(d, "a.npy"), os.path.join(d, "b.npy")
            with open(src, "wb") as f:
                np.lib.format.write_array(f, a, version=version)
            r = run("npy", src, "--json", "--save", out)
            check(r.returncode == 0, f"{dt} {shape} {version}: {r.stderr}")
            if r.returncode:
                continue
            info = json.loads(r.stdout)
            check(tuple(info["shape"]) == shape and info["dtype"] == str(a.dtype), f"{dt} {shape} meta {info}")
            if a.size:
                af = a.astype(np.float64)
                # cJSON prints doubles with 15 significant digits when they read back within an epsilon;
                # the byte-exact round trip below is what proves the data itself is exact.
                tol = 1e-14 * max(1, np.abs(af).max())
                check(abs(info["min"] - af.min()) <= tol and abs(info["max"] - af.max()) <= tol, f"{dt} {shape} min/max")
                check(abs(info["sum"] - af.sum()) <= 1e-9 * max(1, np.abs(af).sum()), f"{dt} {shape} sum")
            b = np.load(out)
            check(b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b), f"{dt} {shape} round trip")
            np.save(src, a)
            check(open(src, "rb").read() == open(out, "rb").read(), f"{dt} {shape} bytes differ from np.save")

    # Hostile inputs: one line on stderr, non-zero exit.
    p = os.path.join(d, "bad.npy")
    np.save(p, np.zeros((4, 4), np.float32))
    good = open(p, "rb").read()
    cases = {
        "truncated": good[:-3],
        "fortran": None,
        "bigendian": None,
        "not npy": b"hello world, not an array",
        "header len lies": good[:8] + b"\xff\xff" + good[10:],
    }
    np.save(p, np.asfortranarray(np.zeros((3, 4), np.float32)))
    cases["fortran"] = open(p, "rb").read()
    np.save(p, np.zeros(3, ">f4"))
    cases["bigendian"] = open(p, "rb").read()
    for name, blob in cases.items():
        with open(p, "wb") as f:
            f.write(blob)
        r = run("npy", p)
        lines = r.stderr.strip().splitlines()
        check(r.returncode != 0 and len(lines) == 1 and "bad.npy" in lines[0], f"{name}: rc={r.returncode} {r.stderr!r}")

print("npy parity:", "FAILED" if fails else "ok", f"({k} arrays)")
sys.exit(1 if fails else 0)
