"""Where things live inside an archive folder, and the ``archive.json`` version gate.

Layout (documented in ``docs/archive-format.md``)::

    archive.json
    experiments/<exp-id>/experiment.json
    experiments/<exp-id>/runs/<run-id>/run.json
                                      /metrics/part-<seq>.parquet
                                      /artifacts/...  + artifacts.json (manifest)
                                      /models/<name>/files/...  + manifest.json
    experiments/<exp-id>/sources/<sha256 of a source run id, 32 hex>/<run-id>   (empty files)
    registry/<model>/model.json
    registry/<model>/versions/<version>.json

Names that appear on disk are either ids the archive generated (hex) or
encoded with :func:`files.safe_segment`; the real names live inside the JSON.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from trackbridge.version import __version__
from trackbridge.backends.archive.filetree import FileTree
from trackbridge.backends.archive.files import read_json, safe_segment, write_json
from trackbridge.errors import BackendError, RunNotFound
from trackbridge.model import now_ms

FORMAT_NAME = "trackbridge-archive"
#: ``major.minor``: readers refuse a newer major, and ignore unknown fields of a newer minor.
FORMAT_VERSION = "1.0"
MANIFEST = "archive.json"
RUN_FILE = "run.json"
SOURCES = "sources"

#: ids the archive hands out, and the only run/experiment folder names it accepts.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


@dataclass(frozen=True)
class Layout:
    """Paths of one archive.  Pure path arithmetic plus the run lookup."""

    root: Path

    @property
    def experiments(self) -> Path:
        return self.root / "experiments"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    def experiment_dir(self, exp_id: str) -> Path:
        return self.experiments / exp_id

    def run_dir(self, exp_id: str, run_id: str) -> Path:
        return self.experiment_dir(exp_id) / "runs" / run_id

    def sources_dir(self, exp_id: str) -> Path:
        """The experiment's index of copies by source run; the folder exists only in
        experiments whose every run was made by a writer that keeps it (see
        :mod:`.source_index`)."""
        return self.experiment_dir(exp_id) / SOURCES

    def source_entries(self, exp_id: str, source_run_id: str) -> Path:
        """Where the runs copied from ``source_run_id`` are listed, one empty file per run id."""
        return self.sources_dir(exp_id) / hashlib.sha256(source_run_id.encode()).hexdigest()[:32]

    @staticmethod
    def artifacts(run_dir: Path) -> FileTree:
        return FileTree(run_dir / "artifacts", run_dir / "artifacts.json")

    @staticmethod
    def model_files(run_dir: Path, name: str) -> FileTree:
        folder = run_dir / "models" / safe_segment(name)
        return FileTree(folder / "files", folder / "manifest.json")

    def registered_model_dir(self, name: str) -> Path:
        return self.registry / safe_segment(name)

    def experiment_dirs(self) -> list[Path]:
        """Experiment folders, skipping hidden/temporary/deleted ones."""
        if not self.experiments.is_dir():
            return []
        return sorted(p for p in self.experiments.iterdir() if valid_id(p.name) and p.is_dir())

    def find_run(self, run_id: str) -> Path:
        """The folder of ``run_id`` in whichever experiment holds it."""
        if valid_id(run_id):
            for exp in self.experiment_dirs():
                candidate = exp / "runs" / run_id
                if (candidate / RUN_FILE).is_file():
                    return candidate
        raise RunNotFound(f"run {run_id!r} is not in the archive {self.root}")


def open_archive(root: Path, *, create: bool) -> Layout:
    """Validate (or, for a writer, initialise) the archive at ``root``.

    A missing or empty folder reads as an empty archive: it is the normal
    state of a destination before the first export (planning and dry runs
    read the destination but must not create it).  A folder that has content
    but no ``archive.json`` is refused: writing into some unrelated folder
    would scatter files through it, and reading it would silently find nothing."""
    layout = Layout(root)
    manifest = root / MANIFEST
    if manifest.is_file():
        _check_manifest(manifest, read_json(manifest))
        return layout
    if root.exists() and not root.is_dir():
        raise BackendError(f"dir:{root} is a file, not a folder. Point dir: at a folder.")
    if root.is_dir() and any(root.iterdir()):
        raise BackendError(
            f"{root} is not a trackbridge archive: {manifest.name} is missing. "
            "Point dir: at an archive made by `trackbridge export`, or at a new/empty folder."
        )
    if create:
        write_manifest(layout)
    return layout


def write_manifest(layout: Layout) -> None:
    """Turn ``layout.root`` (missing or empty) into an archive by writing its manifest.

    Separate from :func:`open_archive` so a writer can validate its folder up
    front but create it only on its first write: a dry run must leave no folder."""
    if not (layout.root / MANIFEST).is_file():
        write_json(layout.root / MANIFEST, {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created_by": f"trackbridge {__version__}",
            "created_at": now_ms(),
        })


def _check_manifest(path: Path, data: object) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise BackendError(
            f"{path} does not describe a trackbridge archive (format is not {FORMAT_NAME!r}). "
            "Point dir: at an archive made by `trackbridge export`."
        )
    version = str(data.get("version", ""))
    major = version.partition(".")[0]
    supported = FORMAT_VERSION.partition(".")[0]
    if not major.isdigit():
        raise BackendError(f"{path}: unreadable format version {version!r}; the file is damaged.")
    if int(major) > int(supported):
        raise BackendError(
            f"{path}: archive format {version} was written by a newer trackbridge "
            f"({data.get('created_by', 'unknown')}); this one reads format {supported}.x. "
            "Upgrade trackbridge (pip install -U trackbridge)."
        )
