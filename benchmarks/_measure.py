"""Run a command as a subprocess and measure wall time and memory.

Two memory figures, both for the whole process tree the command starts:

* ``tree_peak_mb``: the largest sum of RSS over the command and all its
  descendants, sampled with psutil every ``interval`` seconds (0.1 s). Shared
  pages are counted once per process (so it over-counts forked workers), and a
  spike shorter than the interval can be missed.
* ``hiwater_mb``: the kernel's high-water mark (``ru_maxrss`` from ``wait4``) of
  the largest *single* process among the command and the descendants it reaped.
  Exact, but per process, not summed.

``ru_maxrss`` counts the memory a process had before ``exec``: a child forked
straight from this (large, mlflow-importing) Python would report this process's
RSS. So the command is started by a tiny launcher (``python -S``, ~10 MB) that
forks and execs it and reports ``wait4``'s ``ru_maxrss`` of that grandchild; the
launcher itself is left out of the psutil sum.

The command runs in its own session; on timeout its whole process group is killed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = proc.children(recursive=True)  # not the launcher itself
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


_LAUNCHER = (
    "import os, sys\n"
    "out = sys.argv[1]; cmd = sys.argv[2:]\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    try:\n"
    "        os.execvp(cmd[0], cmd)\n"
    "    finally:\n"
    "        os._exit(127)\n"
    "_, status, ru = os.wait4(pid, 0)\n"
    "open(out, 'w').write('%d %.3f' % (ru.ru_maxrss, ru.ru_utime + ru.ru_stime))\n"
    "sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)\n"
)


def tree_cpu_s(pid: int) -> float:
    """User + sys CPU seconds used so far by a live process and its live descendants
    (e.g. an ``mlflow server`` and its uvicorn workers)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, log: Path,
        timeout: float = 3600.0, interval: float = 0.1) -> dict:
    """Run ``cmd``; stdout and stderr go to ``log`` (and ``log``.err).

    Returns {"rc", "timed_out", "wall_s", "tree_peak_mb", "hiwater_mb", "cpu_s", "stdout", "stderr_tail"}.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    err = log.with_suffix(log.suffix + ".err")
    with open(log, "wb") as out, open(err, "wb") as errf:
        t0 = time.perf_counter()
        maxrss_file = log.with_suffix(log.suffix + ".maxrss")
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(maxrss_file)]
        proc = subprocess.Popen(launcher + list(cmd), stdout=out, stderr=errf, env=env, cwd=cwd, start_new_session=True)
        ps = psutil.Process(proc.pid)
        peak = 0
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss(ps))
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(interval)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    # reap anything the command left behind in its group (it should leave nothing)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    stderr = err.read_text(errors="replace")
    try:
        hw, cpu = maxrss_file.read_text().split()
        hiwater, cpu_s = int(hw), float(cpu)
        maxrss_file.unlink()
    except (OSError, ValueError):
        hiwater, cpu_s = 0, None  # killed before the launcher could report
    return {
        "rc": None if timed_out else proc.returncode,
        "timed_out": timed_out,
        "wall_s": round(wall, 2),
        "tree_peak_mb": round(peak / 2**20, 1),
        "hiwater_mb": round(hiwater / 1024, 1),  # Linux: KiB
        "cpu_s": cpu_s,  # user + sys CPU seconds of the command and its reaped descendants
        "stdout": log.read_text(errors="replace"),
        "stderr_tail": stderr[-3000:],
    }
