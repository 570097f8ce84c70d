"""The canonical sample every backend must hold: written through the Writer
interface only, so the same sample goes into any backend (as a copy's source, or
straight into the backend under test for a round trip)."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from trackbridge.backends.base import Writer
from trackbridge.mapping import flatten, param_to_str
from trackbridge.model import LoggedModel, MetricPoint, ModelVersion, RegisteredModel, RunStatus

T0 = 1_700_000_000_000
#: more than one batch of every platform here (MLflow 1000, Azure 250) and one page.
POINTS = 2_600


@dataclass
class Sample:
    experiment: str
    parent: str = ""
    child: str = ""
    model: str = ""
    #: key -> every point written, in order
    series: dict[str, list[MetricPoint]] = field(default_factory=dict)
    system: dict[str, list[MetricPoint]] = field(default_factory=dict)


def series(n: int = POINTS) -> dict[str, list[MetricPoint]]:
    """A long series with NaN/±inf, a sparse one, one with repeated and backward steps."""
    loss = [MetricPoint(i, math.sin(i / 7), T0 + 1000 + i * 10) for i in range(n)]
    loss[3] = MetricPoint(3, math.nan, loss[3].timestamp)
    loss[5] = MetricPoint(5, math.inf, loss[5].timestamp)
    loss[8] = MetricPoint(8, -math.inf, loss[8].timestamp)
    sparse = [MetricPoint(i, float(i), T0 + 1000 + i * 10) for i in range(0, n, 250)]
    odd = [MetricPoint(s, float(i), T0 + 2000 + i) for i, s in enumerate([0, 1, 1, 5, 3, 7])]
    return {"loss": loss, "eval/acc": sparse, "odd steps": odd}


def write_sample(writer: Writer, tmp: Path, experiment: str | None = None, n: int = POINTS,
                 with_model: bool = True) -> Sample:
    """A parent run and a nested child, with every canonical field, and a registered model."""
    sample = Sample(experiment or f"conformance {uuid.uuid4().hex[:8]}")
    exp_id = writer.ensure_experiment(sample.experiment)
    sample.parent = writer.create_run(exp_id, name="parent ✓", start_time=T0, user="ada",
                                      tags={"team": "vision", "stage": "dev"})
    run = sample.parent
    params = {"lr": 0.01, "layers": 3, "optimizer": {"name": "adam", "beta": 0.9}, "note": "ü"}
    if writer.limits.flat_params:  # the writer contract: params come fitted to the limits
        params = {k: param_to_str(k, v) for k, v in flatten(params, writer.limits.nested_separator).items()}
    writer.log_params(run, params)
    writer.set_labels(run, ["baseline", "gpu"])
    writer.set_notes(run, "the parent run\nsecond line")
    writer.log_summary(run, {"best_acc": 0.93, "epochs": 12})
    sample.series = series(n)
    for key, points in sample.series.items():
        writer.log_metrics(run, [(key, p) for p in points])
    sample.system = {"system/cpu": [MetricPoint(i, 10.0 + i, T0 + 1500 + i * 1000) for i in range(5)]}
    writer.log_system_metrics(run, [("system/cpu", p) for p in sample.system["system/cpu"]])
    files = tmp / "files"
    (files / "sub").mkdir(parents=True)
    (files / "report.txt").write_text("report ✓\n", encoding="utf-8")
    (files / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
    writer.log_artifact(run, files / "report.txt")
    writer.log_artifact(run, files / "sub" / "data.bin", "sub")
    if with_model:
        model_dir = tmp / "model"
        model_dir.mkdir()
        (model_dir / "MLmodel").write_text(
            f"artifact_path: model\nflavors:\n  python_function:\n    loader_module: x\nrun_id: {run}\n",
            encoding="utf-8")
        (model_dir / "weights.bin").write_bytes(b"\x00\x01" * 100)
        logged = writer.log_model(run, model_dir, LoggedModel(name="model", artifact_path="model"))
    writer.finish_run(run, RunStatus.FINISHED, T0 + 60_000)

    sample.child = writer.create_run(exp_id, name="child", start_time=T0 + 10, user="ada",
                                     parent_run_id=sample.parent, tags={"fold": "1"})
    writer.log_metrics(sample.child, [("loss", MetricPoint(i, 1.0 / (i + 1), T0 + 20 + i)) for i in range(10)])
    writer.finish_run(sample.child, RunStatus.FAILED, T0 + 30_000)

    if with_model:
        sample.model = f"conformance-model-{uuid.uuid4().hex[:6]}"
        writer.register_model(RegisteredModel(sample.model, "a model ✓", {"owner": "ada"}))
        for _ in range(2):
            made = writer.create_model_version(
                ModelVersion(sample.model, "", run_id=run, artifact_path="model", model_id=logged.model_id,
                             description="v"), run)
        writer.set_model_alias(sample.model, "champion", made.version)
    writer.flush()
    return sample
