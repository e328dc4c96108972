"""Hostile study results CSVs and arguments for `cvision study-report`: each must fail with exactly
one line on stderr ("cvision: ...") naming the file and the line (or the inconsistency), exit
non-zero, not trip ASan/UBSan (this test runs against the sanitizer build), and leave no output."""
import os
import subprocess
import sys
import tempfile

CVISION = os.environ.get("CVISION", "cvision")
H = "model,dataset,metric,upstream,value\n"
OK = "resnet18,digits,accuracy,69.8,0.95\n"

# (name, file content, text the message must contain; None: the path is not in the message)
CASES = [
    ("text value", H + OK + "vgg,digits,accuracy,71.6,abc\n", ":3: column 'value': 'abc' is not a finite number"),
    ("inf upstream", H + OK + "vgg,digits,accuracy,inf,0.9\n", ":3: column 'upstream': 'inf' is not a finite number"),
    ("overflow", H + "vgg,digits,accuracy,1e999,0.9\n", ":2: column 'upstream': '1e999'"),
    ("trailing junk", H + OK + OK.replace("r18", "r34").replace("0.95", "0.9x"), ":3: column 'value': '0.9x'"),
    ("short row", H + OK + "vgg,digits,accuracy,71.6\n", ":3: 4 fields, the header has 5"),
    ("long row", H + OK + OK + "vgg,digits,accuracy,71.6,0.9,1\n", ":4: 6 fields, the header has 5"),
    ("empty model", H + ",digits,accuracy,71.6,0.9\n", ":2: column 'model' is empty"),
    ("empty metric", H + "vgg,digits,,71.6,0.9\n", ":2: column 'metric' is empty"),
    ("NUL byte", H + "vg\x00g,digits,accuracy,71.6,0.9\n", ":2: column 'model' has a NUL byte"),
    ("CRLF and a bad line", H.replace("\n", "\r\n") + OK.replace("\n", "\r\n") + "x,y,z,1,?\r\n", ":3: column 'value': '?'"),
    ("no value column", "model,dataset,metric,upstream\nm,d,a,1\n", ":1: no 'value' column"),
    ("duplicate column", "model,model,dataset,metric,upstream,value\n", ":1: column 'model' appears twice"),
    ("empty file", "", ":1: no 'model' column"),
    ("header only", H, "no results after the header"),
    ("too many columns", ",".join(["c"] * 300) + "\n", ":1: more than 256 columns"),
    ("model twice", H + OK + OK, "model 'resnet18' has two results for dataset 'digits'"),
    ("two metrics", H + OK + "vgg,digits,qwk,71.6,0.9\n",
     "dataset 'digits' is scored by 'accuracy' for model 'resnet18' but by 'qwk' for model 'vgg'"),
]


def one_line_failure(args, want, path, name, failures):
    p = subprocess.run([CVISION, "study-report", *args], capture_output=True, text=True, errors="replace")
    lines = p.stderr.strip().splitlines()
    ok = (p.returncode != 0 and p.returncode < 128 and len(lines) == 1 and lines[0].startswith("cvision: ")
          and (path is None or path in lines[0]) and want in lines[0])
    if not ok:
        failures.append(f"{name}: rc {p.returncode}, stderr {p.stderr.strip()!r}, wanted one line with {want!r}")


def main():
    failures = []
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out")
        for name, content, want in CASES:
            path = os.path.join(d, "results.csv")
            with open(path, "w", newline="") as f:
                f.write(content)
            inconsistent = name in ("model twice", "two metrics")
            one_line_failure(["--results", path, "--out", out], want, None if inconsistent else path, name, failures)
            if os.path.exists(out):
                failures.append(f"{name}: an output directory was written")
        path = os.path.join(d, "results.csv")
        with open(path, "w") as f:
            f.write(H + OK)
        for name, args, want in [
            ("missing file", ["--results", os.path.join(d, "nope.csv"), "--out", out], "nope.csv"),
            ("no --out", ["--results", path], "--results and --out are required"),
            ("bad --boot", ["--results", path, "--out", out, "--boot", "-3"], "--boot"),
            ("bad --seed", ["--results", path, "--out", out, "--seed", "x1"], "--seed: 'x1'"),
            ("unknown option", ["--results", path, "--out", out, "--bogus", "1"], "unknown option --bogus"),
            ("out is a file", ["--results", path, "--out", path], "analysis.json"),
        ]:
            one_line_failure(args, want, None, name, failures)
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"{len(CASES) + 6} hostile inputs rejected with one line, ok")


if __name__ == "__main__":
    main()
