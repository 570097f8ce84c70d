"""Deterministic benchmark corpus for MLflow: runs with params, tags, metric
histories and artifacts, built with the plain ``MlflowClient`` (``log_batch``).

The same generator gives the points back in memory (``metric_points``), so the
"raw write alone" benchmark writes exactly the values the corpus holds without
reading them first.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

BATCH = 1000  # MLflow's log_batch limit for metrics per request
BASE_TS_MS = 1_780_000_000_000  # fixed origin, so reruns give identical values


@dataclass
class CorpusSpec:
    runs: int = 50
    params: int = 20
    tags: int = 5
    metrics: int = 5
    steps: int = 2000
    artifact_sizes: list[int] = field(default_factory=lambda: [1024, 100 * 1024, 1024 * 1024])
    experiment: str = "bench-sync"

    @property
    def points(self) -> int:
        return self.runs * self.metrics * self.steps

    def as_dict(self) -> dict:
        return asdict(self) | {"points": self.points}


def metric_keys(spec: CorpusSpec) -> list[str]:
    return [f"metric_{k}" for k in range(spec.metrics)]


def value(run: int, key: int, step: int) -> float:
    return math.sin(step / 97.0 + run) * (key + 1) + step * 1e-4


def metric_points(spec: CorpusSpec, run: int, key: int, steps: range | None = None):
    """(value, timestamp_ms, step) tuples of one series."""
    for step in steps if steps is not None else range(spec.steps):
        yield value(run, key, step), BASE_TS_MS + run * 10_000_000 + step * 10, step


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _log_series(client, run_id: str, spec: CorpusSpec, run: int, steps: range) -> int:
    from mlflow.entities import Metric

    metrics = [
        Metric(key, v, ts, step)
        for k, key in enumerate(metric_keys(spec))
        for v, ts, step in metric_points(spec, run, k, steps)
    ]
    for chunk in _chunks(metrics, BATCH):
        client.log_batch(run_id, metrics=chunk)
    return len(metrics)


def _artifact_files(spec: CorpusSpec, folder: Path) -> list[Path]:
    files = []
    for size in spec.artifact_sizes:
        path = folder / f"blob_{size}.bin"
        if not path.exists():
            path.write_bytes(os.urandom(size))
        files.append(path)
    return files


def _build_run(client, exp_id: str, spec: CorpusSpec, run: int, files: list[Path]) -> str:
    from mlflow.entities import Param, RunTag

    start = BASE_TS_MS + run * 10_000_000
    r = client.create_run(exp_id, start_time=start, run_name=f"run-{run:04d}")
    run_id = r.info.run_id
    params = [Param(f"param_{p}", f"value-{run}-{p}") for p in range(spec.params)]
    tags = [RunTag(f"tag_{t}", f"tag-{run}-{t}") for t in range(spec.tags)]
    for chunk in _chunks(params + tags, 100):
        client.log_batch(run_id, params=[x for x in chunk if isinstance(x, Param)],
                         tags=[x for x in chunk if isinstance(x, RunTag)])
    _log_series(client, run_id, spec, run, range(spec.steps))
    for f in files:
        client.log_artifact(run_id, str(f), artifact_path="files")
    client.set_terminated(run_id, "FINISHED", end_time=start + spec.steps * 10 + 1000)
    return run_id


def build(tracking_uri: str, spec: CorpusSpec, threads: int = 8, log=print,
          artifact_location: str | None = None) -> dict:
    """Create the experiment and its runs; returns {"experiment_id", "run_ids", "seconds"}.
    ``artifact_location`` matters for embedded stores (default: ./mlruns of the cwd)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment(spec.experiment, artifact_location=artifact_location)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        files = _artifact_files(spec, Path(tmp))
        done = 0
        run_ids: list[str] = [""] * spec.runs
        with ThreadPoolExecutor(threads) as pool:
            futures = {pool.submit(_build_run, client, exp_id, spec, i, files): i for i in range(spec.runs)}
            for fut in futures:
                run_ids[futures[fut]] = fut.result()
                done += 1
                if done % max(1, spec.runs // 10) == 0 or done == spec.runs:
                    log(f"  corpus: {done}/{spec.runs} runs ({time.perf_counter() - t0:.0f} s)")
    return {"experiment_id": exp_id, "run_ids": run_ids, "seconds": time.perf_counter() - t0}


def mutate(tracking_uri: str, spec: CorpusSpec, run_ids: list[str], touched: int = 5,
           new_points_per_run: int = 100) -> dict:
    """The change set for the incremental sync: one new run (full size) and
    ``new_points_per_run`` new points (new steps, spread over the metric keys)
    on each of ``touched`` existing runs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(spec.experiment)
    per_key = max(1, new_points_per_run // spec.metrics)
    added = 0
    for i, run_id in enumerate(run_ids[:touched]):
        added += _log_series(client, run_id, spec, i, range(spec.steps, spec.steps + per_key))
    with tempfile.TemporaryDirectory() as tmp:
        new_id = _build_run(client, exp.experiment_id, spec, spec.runs, _artifact_files(spec, Path(tmp)))
    return {"new_run_id": new_id, "touched_runs": run_ids[:touched],
            "points_on_existing_runs": added, "points_in_new_run": spec.metrics * spec.steps}
