"""``--executor ray``: the shards of one copy (:mod:`.shard`) as Ray tasks.

Copies are idempotent through the destination's provenance tags, so a shard that a
worker lost half-way is simply run again (Ray's task retries) and finishes the runs the
first try left half-written, exactly as a re-run does on one machine.  Each task opens
its own backends from the command line's remotes (workers share no connection with the
driver) and returns its summary, which the CLI adds up; the registry is copied by the
last pass the CLI runs itself, without a shard.

What each worker needs: the same remotes reachable (a path remote must be a path every
worker sees, such as a shared volume), trackbridge and the backends' SDKs installed, and
the credentials in its environment or ``.env``.  Ray is imported only here, and only
when asked for.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from trackbridge.backends.base import Backend
from trackbridge.errors import ConfigError
from trackbridge.sync.engine import Options, SyncEngine
from trackbridge.sync.plan import Selection
from trackbridge.sync.shard import Shard

#: Opens (source, destination) inside a worker; must pickle (Ray ships it to each task).
Opener = Callable[[], tuple[Backend, Backend]]


def _copy_shard(opener: Opener, cwd: str, selection: Selection, options: Options) -> dict[str, Any]:
    """One shard, in a Ray worker: paths and ``.env`` resolve as on the driver."""
    os.chdir(cwd)
    src, dst = opener()
    return SyncEngine(src, dst, options).run(selection).to_json()


def run_shards(opener: Opener, selection: Selection, options: Options, shards: int, *,
               address: str | None = None, retries: int = 2,
               on_done: Callable[[int, dict[str, Any]], None] = lambda index, result: None) -> list[dict[str, Any]]:
    """Run ``shards`` parts of ``selection`` as Ray tasks; each part's outcome (JSON), in
    part order.  ``address``: an existing cluster (``ray://...`` or ``auto``); without it a
    local Ray instance is started on 127.0.0.1 for this call and stopped after it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'trackbridge[ray]'") from None
    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        task = ray.remote(max_retries=retries, retry_exceptions=True)(_copy_shard)
        cwd = os.getcwd()
        pending = {task.remote(opener, cwd, replace(selection, shard=Shard(i, shards)), options): i
                   for i in range(shards)}
        results: dict[int, dict[str, Any]] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                results[index] = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a shard that failed every retry is reported, not raised
                results[index] = {"ok": False, "errors": [f"shard {index}/{shards}: {type(exc).__name__}: {exc}"],
                                  "stats": {}}
            on_done(index, results[index])
        return [results[i] for i in range(shards)]
    finally:
        if started:
            ray.shutdown()
