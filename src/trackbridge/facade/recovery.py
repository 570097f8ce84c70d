"""Runs left behind by a process that ended without sending them (killed with SIGKILL,
the OOM killer, a preempted node, or an exit with a backend down), sent by the next
``start_run`` in the same ``TRACKBRIDGE_HOME``.

Why at ``start_run``: the user who lost a training process to the OOM killer starts
the next one, usually without thinking of ``trackbridge replay``.  Why in the
background: the training must not wait for a backlog.  Why it cannot send twice:
the same :class:`~trackbridge.facade.replay.Replayer` as ``trackbridge replay``,
which takes each run's lock first (a run owned by a live process, or being sent
by another replay, is skipped) and resumes after the last acknowledged op.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from trackbridge.config import Config
from trackbridge.facade.replay import Replayer, SpoolBusy, SpooledRun, list_spooled
from trackbridge.facade.spool import pending_spools, spool_root

log = logging.getLogger("trackbridge")

#: seconds between attempts while a backend stays unreachable (then doubled, capped).
FIRST_RETRY, MAX_RETRY = 2.0, 60.0
_started: set[str] = set()
_lock = threading.Lock()


def orphaned(home: Path) -> bool:
    """A cheap look (no journal is read): is there a journal no live process owns?"""
    for _remote, spool in pending_spools(spool_root(home)):
        if spool.try_lock():
            spool.unlock()
            return True
    return False


def recover_orphans(config: Config) -> threading.Thread | None:
    """Once per process and home: if ended processes left runs unsent, say so on
    stderr and send them in a background thread; the thread, or ``None``."""
    home = Path(config.home)
    with _lock:
        if str(home) in _started:
            return None
        _started.add(str(home))
    if not orphaned(home):
        return None
    thread = threading.Thread(target=_send_all, args=(config, home), name="trackbridge-recovery", daemon=True)
    thread.start()
    return thread


def _send_all(config: Config, home: Path) -> None:
    runs = [run for run in list_spooled(home) if not run.busy]
    if not runs:
        return
    killed = sum(run.unfinished for run in runs)
    print(
        f"trackbridge: {len(runs)} run(s) in {spool_root(home)} were left unsent by a process that ended"
        + (f" ({killed} never finished: killed? they are marked KILLED at their last point)" if killed else "")
        + f": {', '.join(run.label for run in runs[:5])}{' ...' if len(runs) > 5 else ''}. "
        "Sending them now in the background, exactly once (as `trackbridge replay` does).",
        file=sys.stderr, flush=True,
    )
    replayer = Replayer(config)
    delay = FIRST_RETRY
    warned: set[str] = set()
    while runs:
        runs = [run for run in runs if not _send(replayer, run, warned)]
        if runs:
            time.sleep(delay)
            delay = min(delay * 2, MAX_RETRY)
            runs = [run for run in list_spooled(home) if any(run.spool.local_id == r.spool.local_id for r in runs)]
    print("trackbridge: the runs left by the ended process are sent.", file=sys.stderr, flush=True)


def _send(replayer: Replayer, run: SpooledRun, warned: set[str]) -> bool:
    """Send one run; ``True`` when nothing is left to do for it here."""
    try:
        stats = replayer.replay(run)
    except SpoolBusy:
        return True  # another process owns or sends it
    except Exception as exc:  # noqa: BLE001  (the backend is down: retry later)
        level = logging.DEBUG if run.spool.local_id in warned else logging.WARNING
        warned.add(run.spool.local_id)
        log.log(level, "trackbridge: run %s left by an ended process could not be sent yet (%s); retrying in "
                "the background (or send it with: trackbridge replay)", run.label, exc)
        return False
    log.info("trackbridge: sent run %s left by an ended process (%d ops, %d points)", run.label,
             stats.ops, stats.points)
    return True
