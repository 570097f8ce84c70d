"""The raw limit: bare ``MlflowClient`` calls, no trackbridge.

Run as a subprocess by ``sync_mlflow.py`` (so its RSS is measured on its own)::

    python benchmarks/_raw.py read     --src URL --experiment NAME --threads 8
    python benchmarks/_raw.py write    --dst URL --runs 50 --metrics 5 --steps 2000 --threads 8
    python benchmarks/_raw.py pipeline --src URL --dst URL --experiment NAME --threads 8

* read: ``get_metric_history`` (REST) of every (run, key) of the experiment, from
  ``threads`` threads; points are counted and dropped.
* write: the corpus' points, generated in memory before the clock starts, written
  with ``log_batch`` of 1000 into new runs of a new experiment, from ``threads`` threads.
* pipeline: producer/consumer: ``threads`` reader threads put series (in chunks of
  1000) on a bounded queue, ``threads`` writer threads ``log_batch`` them to the
  destination, so reading and writing overlap.

Only metric points move (plus ``create_run`` per run, and listing the runs for
read/pipeline); params, tags and artifacts are not part of the raw limit.
Prints one JSON line: {"mode", "points", "runs", "seconds"} where seconds is the
timed section only (no interpreter start-up or imports).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from _corpus import BATCH, CorpusSpec, metric_keys, metric_points  # noqa: E402


def _list_runs(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _series_tasks(runs):
    return [(r.info.run_id, key) for r in runs for key in sorted(r.data.metrics)]


def read(args) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(args.src)
    t0 = time.perf_counter()
    tasks = _series_tasks(_list_runs(client, args.experiment))
    with ThreadPoolExecutor(args.threads) as pool:
        points = sum(pool.map(lambda t: len(client.get_metric_history(*t)), tasks))
    return {"points": points, "runs": len({t[0] for t in tasks}), "seconds": time.perf_counter() - t0}


def write(args) -> dict:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    spec = CorpusSpec(runs=args.runs, metrics=args.metrics, steps=args.steps)
    keys = metric_keys(spec)
    batches = []  # (run index, [Metric]) prepared before the clock starts
    for run in range(spec.runs):
        for k, key in enumerate(keys):
            series = [Metric(key, v, ts, s) for v, ts, s in metric_points(spec, run, k)]
            batches.extend((run, series[i : i + BATCH]) for i in range(0, len(series), BATCH))
    client = MlflowClient(args.dst)
    t0 = time.perf_counter()
    exp_id = client.create_experiment(f"raw-write-{int(time.time())}")
    with ThreadPoolExecutor(args.threads) as pool:
        run_ids = list(pool.map(lambda i: client.create_run(exp_id).info.run_id, range(spec.runs)))
        list(pool.map(lambda b: client.log_batch(run_ids[b[0]], metrics=b[1]), batches))
    points = sum(len(b[1]) for b in batches)
    return {"points": points, "runs": spec.runs, "seconds": time.perf_counter() - t0}


def pipeline(args) -> dict:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    src, dst = MlflowClient(args.src), MlflowClient(args.dst)
    t0 = time.perf_counter()
    runs = _list_runs(src, args.experiment)
    exp_id = dst.create_experiment(f"raw-pipeline-{int(time.time())}")
    with ThreadPoolExecutor(args.threads) as pool:
        dst_ids = dict(zip([r.info.run_id for r in runs],
                           pool.map(lambda r: dst.create_run(exp_id).info.run_id, runs)))
    tasks = _series_tasks(runs)
    q: queue.Queue = queue.Queue(maxsize=4 * args.threads)
    written = [0] * args.threads
    errors: list[BaseException] = []

    def writer(slot: int) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            try:
                dst.log_batch(item[0], metrics=item[1])
                written[slot] += len(item[1])
            except BaseException as exc:  # keep draining so readers never block forever
                errors.append(exc)

    def reader(task) -> None:
        run_id, key = task
        hist = src.get_metric_history(run_id, key)
        batch = [Metric(m.key, m.value, m.timestamp, m.step) for m in hist]
        for i in range(0, len(batch), BATCH):
            q.put((dst_ids[run_id], batch[i : i + BATCH]))

    writers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(args.threads)]
    for w in writers:
        w.start()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(reader, tasks))
    for _ in writers:
        q.put(None)
    for w in writers:
        w.join()
    if errors:
        raise errors[0]
    return {"points": sum(written), "runs": len(runs), "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["read", "write", "pipeline"])
    ap.add_argument("--src")
    ap.add_argument("--dst")
    ap.add_argument("--experiment")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    result = {"read": read, "write": write, "pipeline": pipeline}[args.mode](args)
    print(json.dumps({"mode": args.mode, "threads": args.threads} | result), flush=True)


if __name__ == "__main__":
    main()
