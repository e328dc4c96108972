"""Data-parallel training with mpirun over loopback (docs/distributed.md).

0. Every cv_comm collective (tests/tools/comm_check.c) gives the values each rank can compute
   itself, in one process and over 3 ranks: sums in float32/float64, two asynchronous allreduces
   in flight, broadcast, allgather, gatherv of uneven and empty parts, refusals of bad arguments,
   and the evaluation gather (rank 0 alone gets every rank's rows, in index order).
1. The loader's shards are torch.utils.data.DistributedSampler's: torch is given cvision's own
   epoch permutation (torch.randperm patched to return it), then padding, drop_last and
   indices[rank::world] must agree exactly; the unpadded evaluation split is perm[rank::world].
2. 2 ranks x batch 16 give the same parameters after 10 steps as 1 rank x batch 32 (squeezenet1_1,
   which has no batch norm; dropout 0; shuffled data: the two ranks' halves of a step are the one
   process's batch), SGD with momentum and weight decay, and AdamW: within 1e-5 of the largest
   parameter (float32 summation order differs).
   Synchronised batch norm (--sync-bn, oneDNN): resnet18 at 16x16, 2 steps, 2 x 16
   against 1 x 32 within 1e-5 (weights relative to the largest weight, running statistics to
   each tensor's largest value); per-rank batch norm must differ from it by more than 1e-3 (the
   check can fail). Only 2 steps: training-mode batch norm at a random initialisation is
   ill-conditioned in float32 (docs/architecture.md), so any change of summation order grows
   over more steps, as between PyTorch runs on different thread counts.
3. Killing rank 1 with SIGKILL mid-run ends the job within 60 s with a non-zero status and mpirun's
   message naming the rank and the signal; nothing hangs.
   A rank failing with an error (rank 0 alone opens the runs database, here at a path that
   cannot exist) prints "cvision: rank 0 of 2: ..." and the job ends non-zero, although rank 1
   is waiting in a collective.
4. --resume after the kill ends with exactly the parameters of an uninterrupted 2-rank run.
5. Distributed validation (an odd number of samples, so the shards differ in length) gives
   exactly the metrics of one process (lr 0, so both evaluate the same weights).
6. `mpirun -np 2 cvision eval` (19 samples: shards of 10 and 9; batches of one sample) writes
   byte for byte the predictions CSV of one process and the same metrics JSON (bootstrap CIs
   included) apart from the timings and the rank count, printed once; multi-class and
   multi-label (a row then carries K labels)."""
import json
import os
import signal
import subprocess
import time

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

from cvtest import CVISION, check, finish, load_safetensors, smooth_images, state_error, tmpdir

TOOL = os.path.join(os.path.dirname(CVISION), "tools", "dist_shard")
COMM_CHECK = os.path.join(os.path.dirname(CVISION), "tools", "comm_check")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="self,vader", OMPI_MCA_rmaps_base_oversubscribe="1")
N, S, K = 64, 32, 4


def shard(spec, world, rank, shuffle, seed, epoch, mode, batch=5):
    out = subprocess.run([TOOL, *map(str, (spec, world, rank, shuffle, seed, epoch, mode, batch))], capture_output=True,
                         text=True, check=True).stdout
    return [int(v) for v in out.split()]


def check_sampler(d):
    for n in [1, 7, 10, 13]:
        spec = f"npy:{d}/sx{n}.npy,{d}/sy{n}.npy"
        np.save(f"{d}/sx{n}.npy", np.zeros((n, 2, 2), np.uint8))
        np.save(f"{d}/sy{n}.npy", np.zeros(n, np.int64))
        for shuffle in [0, 1]:
            for epoch in [0, 3]:
                perm = shard(spec, 1, 0, shuffle, 42, epoch, "pad")
                ok = sorted(perm) == list(range(n))
                real = torch.randperm
                torch.randperm = lambda m, generator=None: torch.tensor(perm)
                try:
                    for world in [2, 3, 4]:
                        for rank in range(world):
                            for mode, drop in [("pad", False), ("drop", True)]:
                                ref = list(DistributedSampler(range(n), world, rank, shuffle=True, seed=42,
                                                              drop_last=drop))
                                ok = ok and shard(spec, world, rank, shuffle, 42, epoch, mode) == ref
                            ok = ok and shard(spec, world, rank, shuffle, 42, epoch, "exact") == perm[rank::world]
                finally:
                    torch.randperm = real
                check(ok, f"sampler n={n} shuffle={shuffle} epoch={epoch}: DistributedSampler's indices, "
                      f"pad and drop_last, world 2-4; exact split perm[rank::world]")


def train_args(d, out, batch, extra=()):
    return [CVISION, "train", "-m", "squeezenet1_1", "--data", f"npy:{d}/X.npy,{d}/Y.npy", "--out", out,
            "--batch", batch, "--dropout", 0, "--train-transform", "to_tensor", "--eval-transform",
            "to_tensor", "--quiet", "--workers", 1, "--threads", 1, "--seed", 3, *extra]


def mpirun(np_, args, **kw):
    return subprocess.Popen(["mpirun", "-np", str(np_), *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def launch(np_, args, timeout=300):
    if np_ == 1:
        p = subprocess.run(list(map(str, args)), env=ENV, capture_output=True, text=True, timeout=timeout)
        out = p.stdout + p.stderr
    else:
        p = mpirun(np_, args)
        out, _ = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({p.returncode}): {out}")
    return out


def rel_diff(a, b):
    scale = max(float(t.abs().max()) for t in a.values() if t.is_floating_point())
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a) / scale


def rank_pid(parent, rank):
    """The pid of rank `rank` among the children of mpirun `parent` (only this test's processes)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                    return int(name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def main():
    d = tmpdir()
    for ranks in [1, 3]:
        p = subprocess.run(([] if ranks == 1 else ["mpirun", "-np", str(ranks)]) + [COMM_CHECK], env=ENV,
                           capture_output=True, text=True, timeout=120)
        lines = p.stdout.splitlines()
        check(p.returncode == 0 and len(lines) == 9 and all(l.startswith("ok") for l in lines),
              f"collectives over {ranks} rank(s): {sum(l.startswith('ok') for l in lines)} of 9 checks pass"
              + ("" if p.returncode == 0 else f" ({p.stdout}{p.stderr})"))
    check_sampler(d)
    rng = np.random.default_rng(0)
    np.save(f"{d}/X.npy", smooth_images(rng, N, S))
    np.save(f"{d}/Y.npy", (np.arange(N) % K).astype(np.int64))

    # 2. 10 steps: 5 epochs of 2 steps, shuffled.
    for opt, lr, wd in [("sgd", 0.01, 1e-4), ("adamw", 1e-4, 0.05)]:
        common = ["--val-fraction", 0, "--epochs", 5, "--opt", opt, "--lr", lr, "--wd", wd]
        launch(1, train_args(d, f"{d}/one-{opt}", 32, common))
        launch(2, train_args(d, f"{d}/two-{opt}", 16, common))
        a = load_safetensors(f"{d}/one-{opt}/last.safetensors")
        b = load_safetensors(f"{d}/two-{opt}/last.safetensors")
        e = rel_diff(a, b)
        if opt == "sgd":
            check(e <= 1e-5, f"{opt}: 2 ranks x 16 vs 1 rank x 32 after 10 steps: {e:.2e} (<= 1e-5)")
            continue
        # Adam divides by sqrt(v): where a gradient is zero in exact arithmetic, the float32
        # residue of either summation order becomes a step of about lr. Those elements may move by
        # up to 10 lr (10 steps); every other element must agree within 1e-5.
        scale = max(float(t.abs().max()) for t in a.values())
        d_all = torch.cat([(a[k].double() - b[k].double()).abs().flatten() for k in a])
        off = d_all > 1e-5 * scale
        frac, worst = float(off.double().mean()), float(d_all.max())
        check(frac < 1e-3 and worst <= 10 * lr * 1.01,
              f"{opt}: 2 ranks x 16 vs 1 rank x 32 after 10 steps: {int(off.sum())} of {d_all.numel()} "
              f"elements ({frac:.1e}) beyond 1e-5 relative (max {worst:.1e} <= 10 lr)")

    # Synchronised batch norm.
    np.save(f"{d}/Xb.npy", smooth_images(rng, 32, 16))
    np.save(f"{d}/Yb.npy", (np.arange(32) % K).astype(np.int64))
    bn = ["train", "-m", "resnet18", "--data", f"npy:{d}/Xb.npy,{d}/Yb.npy", "--val-fraction", 0, "--epochs", 2,
          "--train-transform", "to_tensor", "--quiet", "--workers", 1, "--threads", 1, "--lr", 0.01, "--seed", 3]
    launch(1, [CVISION, *bn, "--sync-bn", "--batch", 32, "--out", f"{d}/bn1"])
    launch(2, [CVISION, *bn, "--sync-bn", "--batch", 16, "--out", f"{d}/bn2"])
    launch(2, [CVISION, *bn, "--batch", 16, "--out", f"{d}/bn2local"])
    ref = load_safetensors(f"{d}/bn1/last.safetensors")
    e_sync = state_error(load_safetensors(f"{d}/bn2/last.safetensors"), ref)[0]
    e_local = state_error(load_safetensors(f"{d}/bn2local/last.safetensors"), ref)[0]
    check(e_sync <= 1e-5 and e_local > 1e-3, f"resnet18 --sync-bn, 2 steps: 2 ranks x 16 vs 1 rank x 32 "
          f"{e_sync:.1e} (<= 1e-5); per-rank batch norm {e_local:.1e} (> 1e-3)")

    # 3. and 4. A run of 12 epochs of 8 steps; rank 1 is killed once an epoch has been saved.
    long = ["--val-fraction", 0, "--epochs", 12, "--lr", 0.01]
    launch(2, train_args(d, f"{d}/full", 4, long))
    p = mpirun(2, train_args(d, f"{d}/killed", 4, long))
    t0, pid = time.time(), None
    while time.time() - t0 < 120 and p.poll() is None:
        if os.path.exists(f"{d}/killed/last.json"):
            pid = rank_pid(p.pid, 1)
            break
        time.sleep(0.05)
    if pid:
        os.kill(pid, signal.SIGKILL)
    t1 = time.time()
    try:
        out, _ = p.communicate(timeout=60)
        hung = False
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        hung = True
    check(pid is not None and not hung and p.returncode != 0,
          f"rank 1 killed: the job ends in {time.time() - t1:.1f} s with status {p.returncode}")
    check("rank 1" in out and "signal 9" in out, f"the message names the rank and the signal: "
          f"{' '.join(l for l in out.splitlines() if 'rank' in l)[:200]}")
    p = mpirun(2, train_args(d, f"{d}/failed", 4, [*long, "--runs-db", f"{d}/no/such/dir/runs.sqlite"]))
    try:
        out, _ = p.communicate(timeout=60)
        hung = False
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        hung = True
    check(not hung and p.returncode != 0 and "cvision: rank 0 of 2: " in out and "runs.sqlite" in out,
          f"rank 0 failing alone ends the job (status {p.returncode}): "
          f"{next((l for l in out.splitlines() if l.startswith('cvision')), out[:200])}")
    done = json.load(open(f"{d}/killed/last.json"))["epoch"]
    check(done < 11, f"killed after epoch {done + 1} of 12")
    launch(2, train_args(d, f"{d}/killed", 4, [*long, "--resume"]))
    e = rel_diff(load_safetensors(f"{d}/full/last.safetensors"), load_safetensors(f"{d}/killed/last.safetensors"))
    check(e == 0, f"--resume after the kill ends with the parameters of the uninterrupted run ({e:.1e})")

    # 5. Validation over 19 samples (2 ranks: 10 + 9), lr 0: the same weights on both sides.
    # Batches of one sample, so that each sample's logits are computed alike (a convolution's
    # rounding may depend on the batch); training skips one-sample batches, so the weights stay.
    val = ["--val-fraction", 0.3, "--epochs", 1, "--lr", 0, "--max-steps", 1]
    launch(1, train_args(d, f"{d}/eval1", 1, val))
    launch(2, train_args(d, f"{d}/eval2", 1, val))
    m1 = json.load(open(f"{d}/eval1/last.json"))["val_metrics"]
    m2 = json.load(open(f"{d}/eval2/last.json"))["val_metrics"]
    check(m1 == m2 and len(m1) > 5, f"distributed validation metrics equal one process's exactly "
          f"({len(m1)} metrics, accuracy {m1.get('accuracy_score')})")

    # 6. cvision eval under mpirun, with the weights trained in 3.
    np.save(f"{d}/Xe.npy", smooth_images(rng, 19, S))
    np.save(f"{d}/Ye.npy", (np.arange(19) % K).astype(np.int64))
    np.save(f"{d}/Ym.npy", (rng.random((19, K)) < 0.4).astype(np.uint8))
    for name, labels, extra in [("multiclass", "Ye", ["--ci", 20]), ("multilabel", "Ym", ["--task", "multilabel"])]:
        reports = []
        for ranks in [1, 2]:
            out = f"{d}/eval-{name}-{ranks}"
            args = [CVISION, "eval", "-m", "squeezenet1_1", "-w", f"{d}/full/last.safetensors", "--data",
                    f"npy:{d}/Xe.npy,{d}/{labels}.npy", "--batch", 1, "--workers", 1, "--threads", 1, "--out", out,
                    "--json", *extra]
            printed = json.loads(launch(ranks, args if ranks == 1 else ["--bind-to", "none", *args]))
            written = json.load(open(f"{out}/metrics.json"))
            ev = written.pop("eval")
            check(printed.pop("eval")["ranks"] == ev["ranks"] == ranks and ev["samples"] == 19 and printed == written,
                  f"eval {name}, {ranks} rank(s): one report printed, the one written, over all 19 samples")
            reports.append((written, open(f"{out}/predictions.csv").read()))
        (j1, csv1), (j2, csv2) = reports
        rows = [int(l.split(",")[0]) for l in csv2.splitlines()[1:]]
        check(csv1 == csv2 and rows == list(range(19)) and j1 == j2 and len(j1["metrics"]) > 5,
              f"eval {name}: 2 ranks write one process's predictions (dataset order) and metrics exactly "
              f"({len(j1['metrics'])} metrics)")
    finish()


if __name__ == "__main__":
    main()
