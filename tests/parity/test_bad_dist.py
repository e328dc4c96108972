"""Data-parallel code under the sanitizers (this test runs against the ASan/UBSan build): the
collectives over 2 ranks, a 2-rank training run with distributed validation, and a hostile
checkpoint on --resume (truncated, so that no complete generation is left): every rank must fail
with a message naming the file, the job must end non-zero within a bounded time, and no sanitizer
report may appear. OpenMPI's allocations at MPI_Init that MPI_Finalize keeps are suppressed with
scripts/lsan.supp (full stack unwinding, and MCA components kept mapped, so that their frames
have names)."""
import os
import subprocess

import numpy as np

from cvtest import CVISION, SRC, check, finish, tmpdir

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="self,vader", OMPI_MCA_rmaps_base_oversubscribe="1",
           OMPI_MCA_mca_base_component_disable_dlclose="1",
           LSAN_OPTIONS=f"suppressions={SRC}/scripts/lsan.supp",
           ASAN_OPTIONS="fast_unwind_on_malloc=0")


def mpirun(*args, timeout=600):
    p = subprocess.run(["mpirun", "-np", "2", *map(str, args)], env=ENV, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def clean(out):
    return "Sanitizer" not in out and "runtime error" not in out


def main():
    d = tmpdir()
    rc, out = mpirun(os.path.join(os.path.dirname(CVISION), "tools", "comm_check"))
    check(rc == 0 and out.count("ok ") == 9 and clean(out), f"collectives over 2 ranks: status {rc}"
          + ("" if rc == 0 else f": {out[-2000:]}"))

    rng = np.random.default_rng(0)
    np.save(f"{d}/X.npy", (rng.random((24, 32, 32, 3)) * 255).astype(np.uint8))
    np.save(f"{d}/Y.npy", (np.arange(24) % 3).astype(np.int64))
    args = [CVISION, "train", "-m", "squeezenet1_1", "--data", f"npy:{d}/X.npy,{d}/Y.npy", "--val-fraction",
            0.25, "--out", f"{d}/run", "--batch", 4, "--epochs", 1, "--max-steps", 2, "--dropout", 0,
            "--train-transform", "to_tensor", "--eval-transform", "to_tensor", "--quiet", "--workers", 1,
            "--threads", 1]
    rc, out = mpirun(*args)
    check(rc == 0 and clean(out), f"2-rank training with validation: status {rc}"
          + ("" if rc == 0 else f": {out[-2000:]}"))

    path = f"{d}/run/last.safetensors"
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    rc, out = mpirun(*args, "--resume", "--epochs", 2, timeout=300)
    lines = [l for l in out.splitlines() if l.startswith("cvision: rank")]
    check(rc != 0 and len(lines) >= 1 and all("last" in l for l in lines) and clean(out),
          f"--resume from a truncated checkpoint: status {rc}, {lines[:2]}")
    finish()


if __name__ == "__main__":
    main()
