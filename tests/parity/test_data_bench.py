"""`cvision data bench`: one pass over a folder dataset through the loader counts every image
once (or N batches with --batches), reports a positive rate, and fails with one line on a bad
spec or transform."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

CVISION = os.environ.get("CVISION", "cvision")


def bench(*args):
    return subprocess.run([CVISION, "data", "bench", *args], capture_output=True, text=True)


def main():
    bad = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        for i in range(11):
            os.makedirs(os.path.join(d, f"c{i % 2}"), exist_ok=True)
            w, h = int(rng.integers(200, 400)), int(rng.integers(200, 400))
            Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(
                os.path.join(d, f"c{i % 2}", f"{i}.jpg"), quality=90)
        for args, want in ((["--workers", "2", "--batch", "4"], 11),
                           (["--workers", "1", "--batch", "4", "--batches", "2"], 8),
                           (["--workers", "3", "--batch", "5", "--epochs", "2"], 11)):
            p = bench(f"folder:{d}", "--transform", "rrc(64),hflip,normalize(imagenet)", *args, "--json")
            if p.returncode:
                bad.append(f"{args}: {p.stderr.strip()}")
                continue
            j = json.loads(p.stdout)
            if j["images"] != want or not j["images_per_s"] > 0:
                bad.append(f"{args}: {j}")
        for args, want in (([f"folder:{d}", "--transform", "rrc(64),nosuchop"], "nosuchop"),
                           ([f"folder:{d}/missing"], "missing"),
                           ([f"folder:{d}", "--workers", "0"], "--workers")):
            p = bench(*args)
            lines = p.stderr.strip().splitlines()
            if p.returncode == 0 or len(lines) != 1 or want not in lines[0]:
                bad.append(f"{args}: rc {p.returncode}, {p.stderr.strip()!r}")
    for b in bad:
        print("FAIL", b)
    if bad:
        sys.exit(1)
    print("data bench: ok")


if __name__ == "__main__":
    main()
