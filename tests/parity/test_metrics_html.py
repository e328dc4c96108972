"""The HTML report: self-contained (no script, no external resource), every inline SVG is
well-formed XML with the expected charts, and headless Chromium renders it to a screenshot
without a single console message. A page with a throwing <script> is rendered first to prove
that the console check sees errors. Skipped (with a message) only when chromium is absent."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np

CVISION = os.environ.get("CVISION", "cvision")
failures = []


def write_csv(path, y, S, multilabel=False):
    K = S.shape[1]
    with open(path, "w") as f:
        f.write("label," + ",".join(f"score_{k}" for k in range(K)) + "\n")
        for i in range(len(S)):
            lab = " ".join(str(c) for c in np.flatnonzero(y[i])) if multilabel else str(y[i])
            f.write(lab + "," + ",".join("%.6g" % v for v in S[i]) + "\n")


def chromium_console(chromium, page, shot):
    """Renders page to shot; returns (rc, console lines)."""
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={shot}",
             "--window-size=1400,1800", "--enable-logging=stderr", "--v=0", "file://" + page],
            capture_output=True, text=True, timeout=120)
    return p.returncode, [l for l in p.stderr.splitlines() if ":CONSOLE" in l]


def check_page(name, page, charts):
    html = open(page).read()
    if "<script" in html.lower():
        failures.append(f"{name}: the page has a script")
    if re.search(r"\b(src|href)\s*=", html) or "url(" in html:
        failures.append(f"{name}: the page references an external resource")
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    for s in svgs:
        try:
            ET.fromstring(s)
        except ET.ParseError as e:
            failures.append(f"{name}: malformed SVG ({e}): {s[:80]}...")
    if len(svgs) != charts:
        failures.append(f"{name}: {len(svgs)} charts, expected {charts}")


def main():
    rng = np.random.default_rng(5)
    pages = []
    with tempfile.TemporaryDirectory() as d:
        n, K = 300, 4
        y = rng.integers(0, K, n)
        S = rng.dirichlet(np.ones(K), n)
        S[np.arange(n), y] += 0.5
        S /= S.sum(1, keepdims=True)
        cases = [("multiclass", y, S, [], 5)]
        yb = rng.integers(0, 2, n)
        t = np.clip(0.3 * yb + 0.7 * rng.random(n), 0, 1)
        cases.append(("binary", yb, np.stack([1 - t, t], 1), [], 5))
        Y = (rng.random((n, 3)) < 0.4).astype(int)
        cases.append(("multilabel", Y, np.clip(0.3 * Y + 0.7 * rng.random((n, 3)), 0, 1),
                      ["--task", "multilabel"], 3))  # no confusion matrix/reliability
        for name, yy, SS, args, charts in cases:
            csv = os.path.join(d, name + ".csv")
            page = os.path.join(d, name + ".html")
            write_csv(csv, yy, SS, name == "multilabel")
            p = subprocess.run([CVISION, "metrics", "--pred", csv, "--html", page, "--ci", "30",
                                *args], capture_output=True, text=True)
            if p.returncode:
                failures.append(f"{name}: cvision failed: {p.stderr.strip()}")
                continue
            check_page(name, page, charts)
            pages.append((name, page))

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            print("skipped: chromium is not installed (the page checks above ran)")
        else:
            bad = os.path.join(d, "bad.html")
            with open(bad, "w") as f:
                f.write("<html><body><script>throw new Error('x')</script></body></html>")
            rc, lines = chromium_console(chromium, bad, os.path.join(d, "bad.png"))
            if not lines:
                failures.append("the console check does not see a throwing script")
            for name, page in pages:
                shot = os.path.join(d, name + ".png")
                rc, lines = chromium_console(chromium, page, shot)
                if rc:
                    failures.append(f"{name}: chromium exited with {rc}")
                if lines:
                    failures.append(f"{name}: console messages: {lines}")
                if not os.path.exists(shot) or os.path.getsize(shot) < 10000:
                    failures.append(f"{name}: no screenshot (or an empty one)")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"{len(pages)} reports rendered, ok")


if __name__ == "__main__":
    main()
