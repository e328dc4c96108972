"""cvision bench: the JSON of the inference and --train modes (fields, sane values) on a small
input; the timing itself is bench/'s business."""
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
    p = run("bench", "-m", "resnet18", "--train", "--classes", "0", check=False)
    check(p.returncode != 0 and "--classes" in p.stderr, f"bad --classes: {p.stderr.strip()}")
    finish()


if __name__ == "__main__":
    main()
