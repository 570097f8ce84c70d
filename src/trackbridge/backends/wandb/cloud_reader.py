"""Reading the W&B cloud or a W&B server through ``wandb.Api`` (placeholder)."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from trackbridge.backends.base import Reader, RunFilter
from trackbridge.model import ArtifactInfo, Experiment, MetricPoint, RunRecord


class WandbCloudReader(Reader):
    def __init__(self, platform: str = "wandb", options: Mapping[str, Any] | None = None) -> None:
        self.platform = platform
        self.options = dict(options or {})

    def list_experiments(self) -> Iterator[Experiment]:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")

    def get_experiment(self, name: str) -> Experiment | None:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")

    def get_run(self, run_id: str) -> RunRecord:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        raise NotImplementedError("reading the W&B cloud is not implemented yet")
