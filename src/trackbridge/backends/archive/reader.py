"""Reading an archive: the :class:`~trackbridge.backends.base.Reader` of ``dir:PATH``.

Every call reads the files, so a reader sees what any writer (this process or
another) has committed; it remembers only where things are (an experiment's
folder by name, a run's experiment), and checks the file is still there.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from trackbridge.backends.archive import metrics, runs
from trackbridge.backends.archive.files import read_json, relative_parts
from trackbridge.backends.archive.layout import RUN_FILE, Layout, open_archive, valid_id
from trackbridge.backends.archive.registry import Registry
from trackbridge.backends.archive.source_index import SourceIndex, indexed_runs
from trackbridge.backends.base import Reader, RunFilter
from trackbridge.errors import BackendError, RunNotFound
from trackbridge.provenance_tags import SOURCE_RUN_ID
from trackbridge.model import ArtifactInfo, Experiment, LoggedModel, MetricPoint, RegisteredModel, RunRecord


def load_experiment(exp_dir: Path) -> Experiment:
    data = read_json(exp_dir / "experiment.json")
    return Experiment(id=data["id"], name=data["name"], tags=data.get("tags", {}))


def list_experiments(layout: Layout) -> Iterator[Experiment]:
    """Experiments of the archive; a folder without ``experiment.json`` (creation interrupted) is skipped."""
    for exp_dir in layout.experiment_dirs():
        if (exp_dir / "experiment.json").is_file():
            yield load_experiment(exp_dir)


class ArchiveReader(Reader):
    platform = runs.PLATFORM

    def __init__(self, root: Path) -> None:
        self.layout = open_archive(root, create=False)
        self.registry = Registry(self.layout)
        self._indexes: dict[Path, SourceIndex] = {}
        self._indexes_lock = threading.Lock()
        self._experiment_dirs: dict[str, Path] = {}
        #: run id -> id of the experiment it was last found in: a run never moves between
        #: experiments, and finding it anew lists every experiment (a copy asks once per key
        #: and per file).
        self._run_homes: dict[str, str] = {}
        #: a runs folder -> its resolved path (the runs' URLs): resolving walks every
        #: component of the path, and the engine lists copies three times per copied run.
        self._resolved: dict[Path, Path] = {}

    def list_experiments(self) -> Iterator[Experiment]:
        return list_experiments(self.layout)

    def get_experiment(self, name: str) -> Experiment | None:
        """By name: the folder last found for it is read first (one file; the engine asks
        several times per copied run), the others only when it no longer holds that name."""
        known = self._experiment_dirs.get(name)
        if known is not None:
            try:
                exp = load_experiment(known)
            except (FileNotFoundError, BackendError):
                exp = None
            if exp is not None and exp.name == name:
                return exp
        exp = next((e for e in self.list_experiments() if e.name == name), None)
        if exp is not None:
            self._experiment_dirs[name] = self.layout.experiment_dir(exp.id)
        return exp

    def list_runs(self, experiment: str, run_filter: RunFilter | None = None) -> Iterator[RunRecord]:
        exp = self.get_experiment(experiment)
        if exp is None:
            return
        runs_dir = self.layout.experiment_dir(exp.id) / "runs"
        if run_filter is not None and run_filter.run_ids is not None:
            candidates = [runs_dir / r for r in run_filter.run_ids if valid_id(r)]
        else:
            candidates = sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []
        for record, run_dir in self._records(candidates, exp.name):
            if run_filter is None or run_filter.matches(record):  # the filter needs no metrics
                yield runs.add_metric_summaries(record, run_dir)

    def _records(self, run_dirs: list[Path], experiment: str) -> Iterator[tuple[RunRecord, Path]]:
        """Records of the runs in ``run_dirs`` that exist (their URL from one resolved
        parent: resolving each run folder cost more than reading its ``run.json``)."""
        parents = self._resolved
        for run_dir in run_dirs:
            if not (valid_id(run_dir.name) and (run_dir / RUN_FILE).is_file()):
                continue
            if run_dir.parent not in parents:
                parents[run_dir.parent] = run_dir.parent.resolve()
            try:
                data = runs.load(run_dir)
            except RunNotFound:  # deleted while we were listing
                continue
            self._run_homes[run_dir.name] = run_dir.parent.parent.name
            yield runs.to_record(run_dir, data, experiment, parents[run_dir.parent] / run_dir.name), run_dir

    def _run_dir(self, run_id: str) -> Path:
        """The folder of ``run_id``: where it was last found while it still holds the run."""
        home = self._run_homes.get(run_id)
        if home is not None:
            known = self.layout.run_dir(home, run_id)
            if (known / RUN_FILE).is_file():
                return known
        found = self.layout.find_run(run_id)
        self._run_homes[run_id] = found.parent.parent.name
        return found

    def find_runs(self, experiment: str, tags: Mapping[str, str]) -> list[RunRecord]:
        """Copies of a source run through the experiment's index by source (on disk, or a
        :class:`SourceIndex`; the engine asks this several times per copied run); other
        look-ups scan the experiment."""
        source = tags.get(SOURCE_RUN_ID)
        exp = self.get_experiment(experiment) if source else None
        if exp is None:
            return super().find_runs(experiment, tags)
        found = indexed_runs(self.layout, exp.id, source)
        if found is None:
            runs_dir = self.layout.experiment_dir(exp.id) / "runs"
            with self._indexes_lock:
                index = self._indexes.setdefault(runs_dir, SourceIndex(runs_dir))
            found = index.runs_of(source)
        return [record for record, _dir in self._records(found, exp.name)
                if all(record.tags.get(k) == v for k, v in tags.items())]

    def get_run(self, run_id: str) -> RunRecord:
        run_dir = self._run_dir(run_id)
        data = runs.load(run_dir)
        experiment = load_experiment(self.layout.experiment_dir(data["experiment_id"]))
        return runs.add_metric_summaries(runs.to_record(run_dir, data, experiment.name), run_dir)

    def iter_metric_history(self, run_id: str, key: str, page_size: int = 10_000) -> Iterator[list[MetricPoint]]:
        return metrics.iter_history(self._run_dir(run_id) / "metrics", key, page_size)

    def list_artifacts(self, run_id: str) -> Iterator[ArtifactInfo]:
        return self.layout.artifacts(self._run_dir(run_id)).list()

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        return self.layout.artifacts(self._run_dir(run_id)).fetch(path, dst_dir)

    def download_model(self, run_id: str, model: LoggedModel, dst_dir: Path) -> Path:
        """Models live apart from artifacts (``models/<artifact_path>/``), so the default does not apply."""
        tree = self.layout.model_files(self._run_dir(run_id), model.artifact_path)
        return tree.fetch_all(dst_dir.joinpath(*relative_parts(model.artifact_path)))

    def list_registered_models(self) -> Iterator[RegisteredModel]:
        return self.registry.list()
