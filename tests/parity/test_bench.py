"""cvision bench: the JSON of the inference and --train modes (fields, sane values) on a small
input, batch lists, --warmup/--seconds/--iters, --profile and --all --list; the timing itself is
bench/'s business."""
import json

from cvtest import check, finish, run


def main():
    for mode, extra in (("inference", []), ("training", ["--train"])):
        o = json.loads(run("bench", "-m", "resnet18", "--batch", 2, "--res", 32, "--classes", 10,
                           "--iters", 3, "--threads", 1, "--json", *extra).stdout)
        check(o["mode"] == mode and o["batch"] == 2 and o["res"] == 32 and o["classes"] == 10,
              f"{mode}: configuration echoed {o}")
        check(o["images_per_s"] > 0 and abs(o["images_per_s"] - 2e3 / o["ms_per_batch_median"]) < 1e-6 * o["images_per_s"],
              f"{mode}: images_per_s = batch / median time")
        check(10 < o["peak_rss_mb"] < 4096, f"{mode}: peak_rss_mb {o['peak_rss_mb']}")
        if mode == "training":
            parts = o["ms_forward_median"] + o["ms_backward_median"] + o["ms_optimizer_median"]
            check(all(o[k] > 0 for k in ("ms_forward_median", "ms_backward_median", "ms_optimizer_median")),
                  "training: the step's parts are timed")
            check(0.5 * o["ms_per_batch_median"] < parts < 2 * o["ms_per_batch_median"],
                  "training: the parts add up to about the step")
        check(0 < o["cpu_ms_per_batch_median"] < 100 * o["ms_per_batch_median"], f"{mode}: CPU time")
    # a batch list gives one object per size; --profile splits the time by graph op, and on
    # swin_t the attention, LayerNorm and window ops run as oneDNN primitives or the backend's own
    # channels-last kernels, never as reference fallbacks
    rows = json.loads(run("bench", "-m", "swin_t", "--batch", "1,2", "--res", 56, "--classes", 10,
                          "--iters", 2, "--threads", 1, "--profile", "--json").stdout)
    check([r["batch"] for r in rows] == [1, 2], f"--batch 1,2 gives {[r.get('batch') for r in rows]}")
    for r in rows:
        prof = {(q["op"], q["how"]): q for q in r["profile"]}
        total = sum(q["ms_per_batch"] for q in r["profile"])
        check(("layer_norm", "oneDNN") in prof and ("window_attention", "own") in prof
              and ("window_attention", "oneDNN") in prof and ("conv2d", "oneDNN") in prof,
              f"swin_t batch {r['batch']}: profile rows {sorted(prof)}")
        check(not any(how == "reference" for _, how in prof), "swin_t: no reference-kernel fallback")
        check(prof[("window_attention", "own")]["calls_per_batch"] == 24,
              "swin_t: 12 window attentions, two own steps each")
        # the profile is a mean over the runs and the time a median: equal on a quiet machine
        check(0 < total < 5 * r["ms_per_batch_median"], "profile within the measured time")
    # --warmup passes, then exactly --iters timed passes, or passes until --seconds have gone (at
    # least one: --seconds 0 gives exactly one; resnet18 at 32x32 takes a few ms a pass)
    small = ("bench", "-m", "resnet18", "--batch", 1, "--res", 32, "--classes", 10, "--threads", 1, "--json")
    for extra, warm, iters in ((["--warmup", 0, "--seconds", 0], 0, 1), (["--warmup", 3, "--iters", 2], 3, 2),
                               (["--seconds", 0], 2, 1), (["--warmup", 1, "--seconds", 0.3], 1, None)):
        o = json.loads(run(*small, *extra).stdout)
        got = (o["warmup"], o["iters"])
        check(got[0] == warm and (got[1] == iters if iters else 1 < got[1] <= 200), f"{extra}: (warmup, iters) {got}")
    for opt, bad in (("--warmup", "-1"), ("--seconds", "-1"), ("--seconds", "nan"), ("--seconds", "1s")):
        p = run("bench", "-m", "resnet18", opt, bad, check=False)
        check(p.returncode != 0 and opt in p.stderr, f"bad {opt} {bad}: {p.stderr.strip()}")
    names = run("bench", "--all", "--list").stdout.split()
    check(len(names) >= 76 and "resnet18" in names and "vit_b_16" in names, f"--all --list: {len(names)}")
    p = run("bench", "-m", "resnet18", "--all", check=False)
    check(p.returncode == 2, "-m and --all together are refused")
    p = run("bench", "-m", "resnet18", "--batch", "1,x", check=False)
    check(p.returncode != 0 and "--batch" in p.stderr, f"bad --batch list: {p.stderr.strip()}")
    p = run("bench", "-m", "resnet18", "--train", "--classes", "0", check=False)
    check(p.returncode != 0 and "--classes" in p.stderr, f"bad --classes: {p.stderr.strip()}")
    finish()


if __name__ == "__main__":
    main()
