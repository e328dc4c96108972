"""Hostile predictions CSVs: each must fail with exactly one line on stderr ("cvision: ...")
that names the file and the line, exit non-zero, and not trip ASan/UBSan (this test runs
against the sanitizer build)."""
import os
import subprocess
import sys
import tempfile

CVISION = os.environ.get("CVISION", "cvision")
H3 = "label,score_0,score_1,score_2\n"
OK = "0,0.7,0.2,0.1\n"

# (name, file content, extra args, text the message must contain)
CASES = [
    ("nan score", H3 + OK + "1,0.2,nan,0.1\n", [], ":3: column 'score_1': 'nan' (NaN)"),
    ("NaN score", H3 + "1,0.2,0.3,NaN\n", [], ":2: column 'score_2': 'NaN' (NaN)"),
    ("inf score", H3 + OK + OK + "2,inf,0,0\n", [], ":4: column 'score_0': 'inf' (infinite)"),
    ("-Infinity score", H3 + "2,0,-Infinity,0\n", [], ":2: column 'score_1': '-Infinity' (infinite)"),
    ("overflowing score", H3 + "2,0,1e60,0\n", [], ":2: column 'score_1': '1e60' (infinite)"),
    ("text score", H3 + OK + "0,0.5,abc,0.5\n", [], ":3: column 'score_1': 'abc' is not a number"),
    ("empty score", H3 + "0,0.5,,0.5\n", [], ":2: column 'score_1': '' is not a number"),
    ("short row", H3 + OK + "1,0.5,0.5\n", [], ":3: expected 4 fields as in the header, found 3"),
    ("long row", H3 + OK + OK + "1,0.5,0.5,0,0\n", [], ":4: expected 4 fields as in the header, found more"),
    ("label out of range", H3 + OK + "3,0.2,0.3,0.5\n", [], ":3: column 'label': class 3 is outside 0..2"),
    ("negative label", H3 + "-1,0.2,0.3,0.5\n", [], ":2: column 'label': '-1' is not a class index"),
    ("float label", H3 + "1.5,0.2,0.3,0.5\n", [], ":2: column 'label': '1.5' is not a class index"),
    ("empty label", H3 + ",0.2,0.3,0.5\n", [], ":2: column 'label': '' is not a class index"),
    ("pred out of range", "label,pred\n0,1\n1,5\n", ["--classes", "3"], ":3: column 'pred': class 5 is outside 0..2"),
    ("multilabel index out of range", H3 + "0 2,0.1,0.2,0.3\n1 3,0.1,0.2,0.3\n",
     ["--task", "multilabel"], ":3: column 'label': class 3 is outside 0..2"),
    ("multilabel junk", H3 + "0 x,0.1,0.2,0.3\n", ["--task", "multilabel"], ":2: column 'label': 'x'"),
    ("empty file", "", [], "empty file"),
    ("blank file", "\n  \n", [], "empty file"),
    ("header only", H3, [], "no data rows"),
    ("no label column", "score_0,score_1\n0.5,0.5\n", [], ":1: no 'label' column"),
    ("missing score column", "label,score_0,score_2\n0,0.5,0.5\n", [], ":1: score columns must be score_0..score_2; score_1 is missing"),
    ("duplicate column", "label,score_0,score_0\n0,1,0\n", [], ":1: column 'score_0' appears twice"),
    ("no scores or pred", "label,other\n0,1\n", [], ":1: no score_0..score_{K-1} columns and no 'pred' column"),
    ("binary with 3 columns", H3 + OK, ["--task", "binary"], ":1: a binary task needs 2 classes"),
    ("classes disagree", H3 + OK, ["--classes", "4"], ":1: 3 score columns but 4 classes"),
    ("binary bytes", "label,score_0\n\x00\x01\x02,0.5\n", [], ":2: column 'label'"),
]


def main():
    failures = []
    with tempfile.TemporaryDirectory() as d:
        for name, content, args, want in CASES:
            path = os.path.join(d, "pred.csv")
            with open(path, "w") as f:
                f.write(content)
            p = subprocess.run([CVISION, "metrics", "--pred", path, *args], capture_output=True,
                               text=True, errors="replace")
            lines = p.stderr.strip().splitlines()
            ok = (p.returncode not in (0,) and p.returncode < 128 and len(lines) == 1 and
                  lines[0].startswith("cvision: ") and path in lines[0] and want in lines[0])
            if not ok:
                failures.append(f"{name}: rc {p.returncode}, stderr {p.stderr.strip()!r}, "
                                f"wanted one line with {path!r} and {want!r}")
        p = subprocess.run([CVISION, "metrics", "--pred", os.path.join(d, "missing.csv")],
                           capture_output=True, text=True)
        if p.returncode == 0 or "missing.csv: cannot open" not in p.stderr:
            failures.append(f"missing file: {p.stderr!r}")
    print(f"{len(CASES) + 1} bad inputs")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
