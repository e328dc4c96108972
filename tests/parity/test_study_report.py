"""The study analysis report (cvision study-report → report.html): self-contained (no script, no
external resource; well-formed inline SVG), one scatter plot per dataset with its points, axes and
regression line, and every number the page shows (cells tagged with data-k, the path of the value in
analysis.json) equal to the JSON's value in the page's format. Headless Chromium renders it without a
console message, and the numbers are read back from Chromium's DOM. Skipped only where chromium is
absent (the static checks still run). Also: the outputs are written atomically (no temporary files
left) and a second run replaces them."""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cvtest import check, finish, run  # noqa: E402
from test_metrics_html import check_page, chromium_console, failures as page_failures  # noqa: E402


def fmt_for(path):
    if path.endswith("p_value"):
        return "%.3g"
    if path.startswith("linear_fit."):
        return "%.6g"
    if path.endswith(".upstream"):
        return "%.2f"
    return "%.4f"


def lookup(ds, path):
    v = ds
    for part in path.split("."):
        v = v[int(part)] if isinstance(v, list) else v[part]
    return v


def check_numbers(html, A, where):
    cells = re.findall(r'data-k="(\d+)\.([^"]+)"[^>]*>([^<]*)<', html)
    check(len(cells) > 20, f"{where}: {len(cells)} numbers tagged")
    bad = []
    for d, path, shown in cells:
        v = lookup(A["datasets"][int(d)], path)
        want = "undefined" if v is None else fmt_for(path) % v
        if shown.strip() != want:
            bad.append(f"{d}.{path}: shown {shown!r}, JSON {v!r}")
    check(not bad, f"{where}: every number shown equals the JSON's {bad[:5]}")


def main():
    rng = np.random.default_rng(3)
    d = tempfile.mkdtemp(prefix="cvtest-")
    res = os.path.join(d, "results.csv")
    models = [f"arch<{i}>&co" if i == 2 else f"arch{i}" for i in range(9)]  # escaping
    up = rng.uniform(56, 83, len(models))
    with open(res, "w") as f:
        f.write("model,dataset,metric,upstream,value\n")
        for k, (dn, metric) in enumerate([("cct20", "accuracy"), ("aptos", "qwk"), ("melanoma", "roc_auc"),
                                          ("flat", "accuracy")]):
            for i, m in enumerate(models):
                v = 0.8 if dn == "flat" else 0.6 + 0.004 * (up[i] - 70) * (k - 0.5) + rng.normal(0, 0.02)
                f.write(f'"{m}",{dn},{metric},{up[i]!r},{"" if (k, i) == (1, 4) else repr(v)}\n')
    out = os.path.join(d, "out")
    run("study-report", "--results", res, "--out", out, "--boot", 300, "--seed", 9)
    run("study-report", "--results", res, "--out", out, "--boot", 300, "--seed", 9)  # replaces
    check(sorted(os.listdir(out)) == ["analysis.csv", "analysis.json", "report.html"],
          f"only the three outputs, no temporary file: {os.listdir(out)}")
    A = json.load(open(os.path.join(out, "analysis.json")))
    page = os.path.join(out, "report.html")
    html = open(page).read()
    check_page("study", page, 4)  # one scatter per dataset
    check(not page_failures, f"self-contained page, well-formed SVG, one per dataset: {page_failures}")
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    for ds, s in zip(A["datasets"], svgs):
        check(s.count("<circle") == ds["n"], f"{ds['name']}: {ds['n']} points plotted")
        check(("class=\"fit\"" in s) == (ds["linear_fit"]["slope"] is not None), f"{ds['name']}: regression line")
        check(len(re.findall(r"<text", s)) >= ds["n"] + 8, f"{ds['name']}: tick and point labels")
    check("arch&lt;2&gt;&amp;co" in html and "arch<2>" not in html, "model names escaped")
    check("Normalized slope" in html and A["normalized_slope_definition"][:40] in html,
          "the normalized slope's definition is stated")
    check("undefined" in html and A["datasets"][3]["pearson_r"]["value"] is None,
          "a constant task metric shows as undefined")
    check_numbers(html, A, "page source")

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("skipped: chromium is not installed (the page checks above ran)")
    else:
        rc, lines = chromium_console(chromium, page, os.path.join(d, "shot.png"))
        check(rc == 0 and not lines, f"chromium renders it without console messages ({rc}, {lines})")
        check(os.path.getsize(os.path.join(d, "shot.png")) > 10000, "a non-empty screenshot")
        with tempfile.TemporaryDirectory() as profile:
            p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--disable-background-networking", f"--user-data-dir={profile}",
                                "--dump-dom", "file://" + page], capture_output=True, text=True, timeout=120)
        dom = p.stdout
        check(dom.count("<svg") == 4, "the rendered DOM has the four plots")
        check_numbers(dom, A, "rendered DOM")
    shutil.rmtree(d)
    finish()


if __name__ == "__main__":
    main()
