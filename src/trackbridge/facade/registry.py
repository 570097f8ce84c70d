"""One worker per backend location per process, and what a spool must record to find it again.

Why process-wide: a hyper-parameter sweep opens hundreds of runs; they share one
writer (one connection pool, one experiment cache) and one thread per backend.
Workers are keyed by where they write, not just by remote name, because the
same name (``mlflow``) can point elsewhere when ``MLFLOW_TRACKING_URI`` changes.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Backend
from trackbridge.facade.replay import history_reader, run_finder
from trackbridge.facade.spool import safe_options, spool_root
from trackbridge.facade.worker import JOURNAL_INTERVAL, Worker
from trackbridge.remotes import RemoteSpec

log = logging.getLogger("trackbridge")
_workers: dict[tuple[str, str, str, str], Worker] = {}
_lock = threading.Lock()


def remote_meta(spec: RemoteSpec, backend: Backend) -> dict[str, Any]:
    """What a spool records to reopen this backend at replay: names and non-secret
    options, plus the resolved tracking location when the backend exposes one (the
    default MLflow store depends on the working directory)."""
    options = safe_options(spec.options)
    location = getattr(backend, "tracking_uri", None)
    if isinstance(location, str) and "tracking_uri" not in options:
        options.update(safe_options({"tracking_uri": location}))
    return {"remote": spec.remote, "backend": spec.backend, "options": options}


def worker_for(spec: RemoteSpec, home: Path, flush_interval: float, max_queued: int,
               journal_interval: float = JOURNAL_INTERVAL) -> tuple[Worker, Backend]:
    """The worker writing to ``spec``'s location, created (with its writer) on first use."""
    backend = spec.open()
    folder = spool_root(home) / spec.remote
    key = (str(folder), spec.backend, repr(sorted(spec.options.items())), backend.describe())
    with _lock:
        worker = _workers.get(key)
        if worker is None:
            worker = Worker(spec.remote, backend.writer(), folder, flush_interval, run_finder(backend),
                            max_queued=max_queued, journal_interval=journal_interval,
                            history=history_reader(backend))
            _workers[key] = worker
    return worker, backend


def shutdown(timeout: float) -> None:
    """Flush every worker (runs already spooled stay on disk, no network retry for them)
    within ``timeout`` seconds, spool what is left, stop the threads, and close the
    writers that were flushed (offline formats are finished there).  Called at exit;
    also useful to release the threads of a long-lived process."""
    with _lock:
        workers = list(_workers.values())
        _workers.clear()
    deadline = time.monotonic() + timeout
    pending = [(worker, worker.request_flush(deliver=False)) for worker in workers]
    for worker, done in pending:
        if not done.wait(max(0.0, deadline - time.monotonic())):
            for channel in worker.pending_channels():
                if not channel.idle():
                    worker.abandon(channel)
            log.warning(
                "trackbridge: %s did not answer in time; unsent data is in %s. "
                "Send it with: trackbridge replay", worker.remote, worker.spool_folder,
            )
            worker.stop()
            continue
        worker.stop()
        try:  # an offline writer finalises its files here (W&B's exit record of each run)
            worker.writer.close()
        except Exception as exc:  # noqa: BLE001 - at exit: say it, never raise into the interpreter
            log.warning("trackbridge: %s: closing it failed (%s); its runs are in the spool: trackbridge replay",
                        worker.remote, exc)
