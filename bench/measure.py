"""Shared by the side-by-side benchmarks: runs one measurement in its own process and says how
much other work shared the machine meanwhile, so that a run disturbed by other jobs is repeated
instead of reported.

foreign CPU = (CPU time the whole machine was busy, from /proc/stat) - (CPU time of the measured
process and its threads, from wait4), divided by the wall time: in cores."""
import json
import os
import select
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


class Failed(Exception):
    """A measured command failed (its stderr is in the message)."""


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


def thread_cpu_seconds(pid):
    """CPU time of a live process's threads (exact, unlike /proc/PID/stat's ticks), or None."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])  # nanoseconds on the CPU
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def run_once(cmd, deadline=None, pass_min=0.0):
    """Runs cmd (which prints one JSON object); returns (object, peak RSS MB, foreign cores).

    With a deadline (seconds), cmd instead prints a line {"pass": k, "t": time.monotonic(),
    "cpu": time.process_time()} right before each forward pass k (0 = the first) and its result
    object on the last line; it is killed `deadline` seconds after its first pass began unless it
    has finished, but not before the pass it is in has run pass_min seconds. The object is then
    {"killed": true, "pass": k, "pass_elapsed_s": e, "pass_cpu_s": c, "passes_s": [...]}: pass k
    was still running after e (>= pass_min) seconds of wall time and c of CPU time (None where
    unknown), and passes_s are the wall times of the finished passes before it. e and c are lower
    bounds of the pass's cost: CLOCK_MONOTONIC is one clock for both processes, and c is the CPU
    time of the process's threads just before the kill (their schedstat runtimes: exact, where
    rusage at its death would add the teardown of its memory) less that at the pass's start."""
    with tempfile.TemporaryFile(mode="w+") as err:
        b0, t0 = busy_seconds(), time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        fd, buf, lines, passes, killed_at = p.stdout.fileno(), b"", [], [], None
        while True:
            wait = None
            if deadline is not None and passes and killed_at is None:
                kill_at = max(passes[0]["t"] + deadline, passes[-1]["t"] + pass_min)
                wait = max(0.0, kill_at - time.monotonic())
            if not select.select([fd], [], [], wait)[0]:
                killed_at, cpu_at_kill = time.monotonic(), thread_cpu_seconds(p.pid)
                p.kill()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                lines.append(line)
                if deadline is not None and line.startswith(b'{"pass"'):
                    passes.append(json.loads(line))
        p.stdout.close()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = status
        wall, busy = time.perf_counter() - t0, busy_seconds() - b0
        own = ru.ru_utime + ru.ru_stime
        last = lines[-1] if lines and lines[-1].startswith(b"{") else b""
        if deadline is None:
            obj = json.loads(b"\n".join(lines + [buf])) if status == 0 else None
        elif last and not last.startswith(b'{"pass"'):
            obj = json.loads(last)  # finished (perhaps just as the kill came)
        elif killed_at is not None and passes:
            k = passes[-1]
            obj = {"killed": True, "pass": k["pass"], "pass_elapsed_s": max(0.0, killed_at - k["t"]),
                   "pass_cpu_s": None if cpu_at_kill is None else max(0.0, cpu_at_kill - k["cpu"]),
                   "passes_s": [b["t"] - a["t"] for a, b in zip(passes, passes[1:])]}
        else:
            obj = None
        if obj is None:
            err.seek(0)
            code = os.waitstatus_to_exitcode(status)
            raise Failed(f"{' '.join(cmd)} failed (exit {code}): {err.read().strip()}")
    return obj, ru.ru_maxrss / 1024, max(0.0, busy - own) / wall


def run_quiet(cmd, max_foreign=0.1, tries=5, wait_idle=60, deadline=None, pass_min=0.0):
    """run_once, repeated while other jobs took more than max_foreign cores on average (at most
    `tries` runs), each started once the machine is idle or after wait_idle seconds (0: at once).
    Returns the least disturbed run: (object, peak MB, foreign cores, runs made)."""
    best = None
    for attempt in range(1, tries + 1):
        t0 = time.monotonic()
        while wait_idle > 0 and idle_fraction() < 0.9 and time.monotonic() - t0 < wait_idle:
            time.sleep(3)
        res = run_once(cmd, deadline, pass_min)
        if best is None or res[2] < best[2]:
            best = res
        if res[2] <= max_foreign:
            return (*res, attempt)
        if attempt < tries:
            print(f"  (disturbed: {res[2]:.2f} foreign cores; repeating)", file=sys.stderr, flush=True)
    return (*best, tries)
