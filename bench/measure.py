"""Shared by the side-by-side benchmarks: runs one measurement in its own process and says how
much other work shared the machine meanwhile, so that a run disturbed by other jobs is repeated
instead of reported.

foreign CPU = (CPU time the whole machine was busy, from /proc/stat) - (CPU time of the measured
process and its threads, from wait4), divided by the wall time: in cores."""
import json
import os
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / TICK


def idle_fraction(seconds=2.0):
    with open("/proc/stat") as f:
        a = [int(x) for x in f.readline().split()[1:9]]
    time.sleep(seconds)
    with open("/proc/stat") as f:
        b = [int(x) for x in f.readline().split()[1:9]]
    d = [y - x for x, y in zip(a, b)]
    return (d[3] + d[4]) / max(1, sum(d))


def run_once(cmd):
    """Runs cmd (which prints one JSON object); returns (object, peak RSS MB, foreign cores)."""
    with tempfile.TemporaryFile(mode="w+") as err:
        b0, t0 = busy_seconds(), time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = status
        wall, busy = time.perf_counter() - t0, busy_seconds() - b0
        if status != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {err.read().strip()}")
    own = ru.ru_utime + ru.ru_stime
    return json.loads(out), ru.ru_maxrss / 1024, max(0.0, busy - own) / wall


def run_quiet(cmd, max_foreign=0.1, tries=5, wait_idle=60):
    """run_once, repeated while other jobs took more than max_foreign cores on average (at most
    `tries` runs), each started once the machine is idle or after wait_idle seconds. Returns the
    least disturbed run: (object, peak MB, foreign cores, runs made)."""
    best = None
    for attempt in range(1, tries + 1):
        t0 = time.monotonic()
        while idle_fraction() < 0.9 and time.monotonic() - t0 < wait_idle:
            time.sleep(3)
        res = run_once(cmd)
        if best is None or res[2] < best[2]:
            best = res
        if res[2] <= max_foreign:
            return (*res, attempt)
        print(f"  (disturbed: {res[2]:.2f} foreign cores; repeating)", file=sys.stderr, flush=True)
    return (*best, tries)
