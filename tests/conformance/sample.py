"""The canonical sample every backend must hold: written through the Writer
interface only, so the same sample goes into any backend (as a copy's source, or
straight into the backend under test for a round trip)."""
from __future__ import annotations

import math
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge import media_layout
from trackbridge.backends.base import Features, Writer
from trackbridge.mapping import flatten, param_to_str
from trackbridge.model import LoggedModel, MediaPoint, MetricPoint, ModelVersion, RegisteredModel, RunStatus

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
    #: params as a seeded (read-only) backend gives them back, when its vendor's tool
    #: shapes them (TensorBoard's hparams: flat, numbers as floats); ``None``: the writer
    #: contract's params (``write_sample``).
    params: dict[str, Any] | None = None
    #: the run's file paths as a seeded backend lists them (Neptune: under their attribute);
    #: ``None``: ``report.txt`` and ``sub/data.bin`` as ``write_sample`` logs them.
    files: set[str] | None = None


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


@dataclass
class RichSample:
    experiment: str
    run: str = ""
    model: str = ""


#: a histogram per epoch and an image per epoch with captions, as users log them.
HISTOGRAMS = [{"bins": [0.0, 0.5, 1.0], "values": [i, 3 - i]} for i in range(3)]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000" "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def rich_media(tmp: Path) -> dict[str, list[tuple[MediaPoint, Path | None]]]:
    """Media series with their local files: histograms (data) and images (files)."""
    tmp.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[tuple[MediaPoint, Path | None]]] = {
        "weights": [(MediaPoint(i, T0 + 100 * i, "histogram", data=h), None) for i, h in enumerate(HISTOGRAMS)]}
    images = []
    for i in range(2):
        local = tmp / f"sample-{i}.png"
        local.write_bytes(PNG + bytes([i]))
        images.append((MediaPoint(i, T0 + 100 * i, "image", file=local.name, caption=f"epoch {i}",
                                  meta={"format": "png", "width": 1, "height": 1}), local))
    series["val/examples"] = images
    return series


def write_media(writer: Writer, run: str, key: str, points: list[tuple[MediaPoint, Path | None]],
                native: bool) -> None:
    """Natively, or as the files of :mod:`trackbridge.media_layout` (what the engine writes
    where a platform has no native kind)."""
    if native:
        writer.log_media(run, key, points)
        return
    kept = []
    for n, (point, local) in enumerate(points):
        path = media_layout.file_path(key, n, point.file) if point.file else None
        if local is not None and path is not None:
            named = local.with_name(PurePosixPath(path).name)
            named.write_bytes(local.read_bytes())
            writer.log_artifact(run, named, str(PurePosixPath(path).parent))
        kept.append(replace(point, file=path))
    folder = Path(tempfile.mkdtemp(prefix="tb-media-"))
    (folder / media_layout.INDEX).write_text(media_layout.encode(kept), encoding="utf-8")
    writer.log_artifact(run, folder / media_layout.INDEX, str(PurePosixPath(media_layout.index_path(key)).parent))


def write_rich_sample(writer: Writer, tmp: Path, features: Features) -> RichSample:
    """One run holding what issue 14 found lost: two logged models of one name (each with
    its own bytes and metadata), media series, artifact metadata, a version with a stage."""
    sample = RichSample(f"rich {uuid.uuid4().hex[:8]}")
    exp_id = writer.ensure_experiment(sample.experiment)
    sample.run = run = writer.create_run(exp_id, name="grid search", start_time=T0)
    writer.log_metrics(run, [("loss", MetricPoint(i, 1.0 / (i + 1), T0 + i)) for i in range(3)])
    files = tmp / "rich-files"
    files.mkdir(parents=True)
    (files / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    writer.log_artifact(run, files / "data.csv", "dataset")
    if features.artifact_meta:
        writer.set_artifact_meta(run, {"dataset": {"type": "dataset", "description": "training rows",
                                                   "metadata": {"rows": 1}, "aliases": ["v1"]}})
    for key, points in rich_media(tmp / "media").items():
        write_media(writer, run, key, points, points[0][0].kind in features.media_kinds)
    logged = []
    for c in (0.1, 1.0):
        model_dir = tmp / f"model-{c}"
        model_dir.mkdir()
        (model_dir / "MLmodel").write_text(f"artifact_path: model\nflavors:\n  sklearn: {{}}\nrun_id: {run}\n",
                                           encoding="utf-8")
        (model_dir / "model.pkl").write_bytes(f"weights for C={c}".encode())
        logged.append(writer.log_model(run, model_dir, LoggedModel(
            "model", "model", params={"C": str(c)}, metrics={"score": c / 2}, tags={"fit": f"C={c}"},
            model_type="classifier", status="READY")))
    writer.finish_run(run, RunStatus.FINISHED, T0 + 5_000)
    if not features.lacks() & {"registry"}:
        sample.model = f"rich-model-{uuid.uuid4().hex[:6]}"
        writer.register_model(RegisteredModel(sample.model, "grid search winner"))
        for stage, model in zip(("Archived", "Production"), logged):
            made = writer.create_model_version(
                ModelVersion(sample.model, "", run_id=run, artifact_path=model.artifact_path,
                             model_id=model.model_id, description=f"C {model.params['C']}"), run)
            if features.stages:
                writer.set_version_stage(sample.model, made.version, stage)
        writer.set_model_alias(sample.model, "champion", made.version)
    writer.flush()
    return sample
