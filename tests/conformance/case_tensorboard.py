"""TensorBoard event files join the conformance suite (``tensorboard:PATH``, read-only):
the canonical sample is written by a real TensorBoard writer (tensorboardX), as much of it
as event files hold, and read back through the backend."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cases import Case
from sample import PNG, T0, Sample, series

from trackbridge.backends.base import Backend
from trackbridge.backends.tensorboard.backend import TensorboardBackend

#: the sample's params as the hparams plugin keeps them: flat, numbers as doubles.
HPARAMS = {"lr": 0.01, "layers": 3, "optimizer.name": "adam", "optimizer.beta": 0.9, "note": "ü"}


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return TensorboardBackend({"path": str(tmp / "tb")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"tensorboard:{backend.path}", {}


def double_scalar(tag: str, value: float) -> Any:
    """A scalar summary as ``torch.utils.tensorboard.summary.scalar(new_style=True,
    double_precision=True)`` builds it (tensorboardX 2.6 writes float32 ``simple_value`` only)."""
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto

    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    tensor = TensorProto(dtype="DT_DOUBLE", double_val=[value], tensor_shape=TensorShapeProto())
    return Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])


def seed(backend: Backend, tmp: Path) -> Sample:
    """A parent run (scalars as doubles and as float32 ``simple_value``, histograms, an
    image, a text, hparams, two files) and its child run in a sub-folder, by tensorboardX."""
    import numpy as np
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    root: Path = backend.path  # type: ignore[attr-defined]
    from tensorboardX.summary import _clean_tag

    # tensorboardX writes "odd steps" as "odd_steps" (TensorFlow's node-name rule): what the run holds
    sample = Sample(root.name, parent="parent ✓", child="parent ✓/child",
                    series={_clean_tag(key): points for key, points in series().items()})
    parent_dir = root / "parent ✓"
    with SummaryWriter(logdir=str(parent_dir), flush_secs=3600) as writer:
        for key, points in sample.series.items():
            for p in points:
                if key == "loss":  # exact: a double tensor, as torch.utils.tensorboard's new_style writes it
                    writer.file_writer.add_summary(double_scalar(key, p.value), p.step, p.timestamp / 1000)
                else:  # float32 simple values, exact for these values
                    writer.add_scalar(key, p.value, p.step, walltime=p.timestamp / 1000)
        for step in range(3):
            writer.add_histogram("weights", np.arange(10.0) * (step + 1), step, walltime=(T0 + step) / 1000)
        writer.add_image("examples", np.full((3, 2, 2), 0.5), 1, walltime=(T0 + 7) / 1000)
        writer.add_text("notes", "epoch **one** ✓", 1, walltime=(T0 + 8) / 1000)
        # into this run (add_hparams would open a second writer on a sub-folder), as users do
        # to keep hparams with their run: the hparams plugin's three summaries
        for summary in hparams(HPARAMS, {}):
            writer.file_writer.add_summary(summary)
    (parent_dir / "sub").mkdir()
    (parent_dir / "report.txt").write_text("report ✓\n", encoding="utf-8")
    (parent_dir / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
    (parent_dir / "preview.png").write_bytes(PNG)
    with SummaryWriter(logdir=str(parent_dir / "child"), flush_secs=3600) as writer:
        for i in range(10):
            writer.add_scalar("loss", 1.0 / (i + 1), i, walltime=(T0 + 20 + i) / 1000)
    sample.params = {k: float(v) if isinstance(v, int) else v for k, v in HPARAMS.items()}
    return sample


CASES = [Case("tensorboard", _make, cli=_cli, seed=seed)]
