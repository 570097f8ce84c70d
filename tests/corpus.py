"""A source corpus built with the PLAIN MLflow client, never through trackbridge.

Why: the sync tests must prove trackbridge reads what MLflow users really
write, so the corpus is produced the way users produce it (``MlflowClient``,
``mlflow.pyfunc.log_model``), with the awkward cases that break copies:
nested runs, unicode/emoji/slashes/spaces in names, NaN/±inf, params near the
length limit, explicit steps and timestamps, artifacts in sub-folders, a
logged model, an old-style model folder whose ``MLmodel`` names its run, and
registered models with several versions and aliases.

``build_corpus`` returns a :class:`Corpus` describing what was written so the
tests can assert against it without reading it back through trackbridge.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

EXPERIMENT = "corpus ✓ exp"
OTHER_EXPERIMENT = "second/exp ü"
MODEL_NAME = "corpus-model ✓"
T0 = 1_700_000_000_000  # fixed base time (ms) so copies can be compared exactly
LONG_SERIES = 2_500  # > one 1000-point batch, < one 10k-point page


@dataclass
class Corpus:
    tracking_uri: str
    experiment: str = EXPERIMENT
    other_experiment: str = OTHER_EXPERIMENT
    model: str = MODEL_NAME
    experiment_ids: dict[str, str] = field(default_factory=dict)
    #: run name -> run id
    runs: dict[str, str] = field(default_factory=dict)
    #: total metric points written, per run name
    points: dict[str, int] = field(default_factory=dict)

    @property
    def total_points(self) -> int:
        return sum(self.points.values())


def _series(key: str, n: int, t0: int, special: bool = False) -> list[Metric]:
    """``n`` points with explicit steps and timestamps; optional NaN/±inf."""
    out = [Metric(key, math.sin(i / 10.0), t0 + i * 7, i * 2) for i in range(n)]
    if special:
        out[3] = Metric(key, float("nan"), out[3].timestamp, out[3].step)
        out[5] = Metric(key, float("inf"), out[5].timestamp, out[5].step)
        out[8] = Metric(key, float("-inf"), out[8].timestamp, out[8].step)
    return out


def _log_metrics(client: MlflowClient, run_id: str, metrics: list[Metric]) -> int:
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    return len(metrics)


def _write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _log_pyfunc_model(tracking_uri: str, run_id: str, workdir: Path) -> str:
    """A real MLflow 3 logged model (``MLmodel`` names the run); returns its model id."""
    import mlflow
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001
            return model_input * 2

    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id, nested=False):
        info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["mlflow"])
    return info.model_id


def build_corpus(tracking_uri: str, workdir: Path, with_model: bool = True, prefix: str = "",
                 mlflow_defaults: bool = False) -> Corpus:
    """Write the corpus into ``tracking_uri``; ``workdir`` holds the staged files and,
    for embedded stores, the artifacts (unless ``mlflow_defaults``: then they go where
    MLflow puts them, ``./mlruns``).  ``prefix`` makes experiment and model names
    unique on a shared server."""
    client = MlflowClient(tracking_uri)
    corpus = Corpus(tracking_uri, prefix + EXPERIMENT, prefix + OTHER_EXPERIMENT, prefix + MODEL_NAME)
    local = not tracking_uri.startswith("http") and not mlflow_defaults
    location = (lambda name: (workdir / "artifacts" / name).as_uri()) if local else (lambda name: None)
    exp_id = client.create_experiment(corpus.experiment, tags={"team": "bridge ✓"}, artifact_location=location("a"))
    other_id = client.create_experiment(corpus.other_experiment, artifact_location=location("b"))
    corpus.experiment_ids = {corpus.experiment: exp_id, corpus.other_experiment: other_id}

    # -- parent with params near the limit, unicode, NaN/inf, long series, artifacts
    parent = client.create_run(
        exp_id, run_name="parent run 🚀/a b", start_time=T0,
        tags={"mlflow.user": "ünï user", "team": "ml 🚀", "path/like key": "v/1",
              "mlflow.note.content": "notes ✓\nline 2"},
    ).info.run_id
    long_value = ("αβγ " * MAX_PARAM_VAL_LENGTH)[: MAX_PARAM_VAL_LENGTH - 3]
    client.log_batch(parent, params=[
        Param("lr", "0.01"), Param("layers", "[64, 32]"), Param("long", long_value),
        Param("name with space", "émoji 🚀"), Param("path/key", "a/b"),
    ], tags=[RunTag("empty", "")])
    points = _log_metrics(client, parent, _series("loss", LONG_SERIES, T0 + 10, special=True))
    points += _log_metrics(client, parent, _series("acc/top 1", 40, T0 + 20))
    # two points at the same step with different timestamps, and a repeated value
    points += _log_metrics(client, parent, [Metric("dup step", 1.0, T0 + 1, 0), Metric("dup step", 1.0, T0 + 2, 0)])
    client.log_inputs(parent, datasets=[DatasetInput(
        Dataset(name="train ✓", digest="abc123", source_type="local", source='{"uri": "/data/train"}',
                schema='{"cols": ["x"]}', profile='{"rows": 10}'),
        tags=[InputTag("mlflow.data.context", "training")],
    )])
    files = _write_files(workdir / "parent", {
        "root.txt": "hello ✓\n".encode(),
        "data/sub dir/values.csv": b"a,b\n1,2\n",
        "data/blob.bin": os.urandom(70_000),
    })
    client.log_artifacts(parent, str(files))
    # an old-style model folder in the run's artifacts whose MLmodel names the run
    legacy = _write_files(workdir / "legacy", {
        "MLmodel": f"artifact_path: legacy_model\nrun_id: {parent}\nflavors: {{}}\n".encode(),
        "weights.txt": b"1 2 3\n",
    })
    client.log_artifacts(parent, str(legacy), "legacy_model")
    model_id = _log_pyfunc_model(tracking_uri, parent, workdir) if with_model else None
    client.set_terminated(parent, "FINISHED", end_time=T0 + 60_000)
    corpus.runs["parent"] = parent
    corpus.points["parent"] = points

    # -- nested children, awkward names, other statuses
    for i, (name, status) in enumerate([("child/1 ✓", "FINISHED"), ("child 2 émoji 🧪", "FAILED")]):
        child = client.create_run(
            exp_id, run_name=name, start_time=T0 + 1000 * (i + 1),
            tags={"mlflow.parentRunId": parent, "mlflow.user": "bot", "fold": str(i)},
        ).info.run_id
        client.log_batch(child, params=[Param("fold", str(i))])
        corpus.points[name] = _log_metrics(client, child, _series("val/loss", 30 + i, T0 + 5000))
        _write_files(workdir / name / "d", {f"fold{i}.json": b'{"ok": true}'})
        client.log_artifacts(child, str(workdir / name / "d"), "out/nested")
        client.set_terminated(child, status, end_time=T0 + 50_000 + i)
        corpus.runs[name] = child

    # -- a run in the other experiment, still RUNNING, no metrics
    lone = client.create_run(other_id, run_name="lone", start_time=T0 + 99).info.run_id
    client.log_param(lone, "k", "v")
    corpus.runs["lone"] = lone
    corpus.points["lone"] = 0

    # -- registry: several versions, aliases, descriptions, tags
    client.create_registered_model(corpus.model, tags={"owner": "ü"}, description="a model ✓")
    client.create_model_version(corpus.model, f"runs:/{parent}/legacy_model", run_id=parent,
                                tags={"v": "1"}, description="from the folder")
    if model_id:
        client.create_model_version(corpus.model, f"models:/{model_id}", run_id=parent,
                                    model_id=model_id, description="from the logged model")
    client.create_model_version(corpus.model, f"runs:/{corpus.runs['child/1 ✓']}/out/nested",
                                run_id=corpus.runs["child/1 ✓"])
    client.set_registered_model_alias(corpus.model, "champion", "1")
    client.set_registered_model_alias(corpus.model, "challenger", "2")
    return corpus


# -- helpers shared by the sync tests -------------------------------------------


def set_remotes(monkeypatch, **uris: str) -> None:  # noqa: ANN001 - pytest's MonkeyPatch
    """Named MLflow remotes through the environment, rclone-style."""
    for name, uri in uris.items():
        monkeypatch.setenv(f"TRACKBRIDGE_REMOTE_{name.upper()}_BACKEND", "mlflow")
        monkeypatch.setenv(f"TRACKBRIDGE_REMOTE_{name.upper()}_TRACKING_URI", uri)


def invoke(*args: str):  # noqa: ANN201 - click's Result
    """Run the trackbridge CLI in-process; stdout and stderr stay separate."""
    from click.testing import CliRunner

    from trackbridge.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def runs_by_source(tracking_uri: str) -> dict[str, list]:
    """Active destination runs of every experiment, keyed by ``trackbridge.source.run_id``
    (read with the plain MLflow client, independently of trackbridge's reader)."""
    client = MlflowClient(tracking_uri)
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    found: dict[str, list] = {}
    for run in client.search_runs(exp_ids, max_results=10_000):
        source = run.data.tags.get("trackbridge.source.run_id")
        if source:
            found.setdefault(source, []).append(run)
    return found


def history(client: MlflowClient, run_id: str, key: str) -> set[tuple]:
    """A metric's points as a set of (step, timestamp, value) with NaN as a string."""
    return {(m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
            for m in client.get_metric_history(run_id, key)}
