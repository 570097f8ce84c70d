"""What a run holds beyond series and files, as the engine sees it on any platform:
media series and artifact metadata, whether the platform keeps them natively or as
trackbridge's files.

A platform without native histograms (MLflow, the archive) gets a copied media series
as files in :mod:`trackbridge.media_layout`, and a platform keeping no metadata per
file gets it in :data:`ARTIFACT_META_FILE`.  Reading through a :class:`RichView` gives
the same canonical series and metadata back either way, so ``plan``, the transfer and
``check`` never care which of the two a platform does, and a later copy out of MLflow
restores native media at a platform that has them.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trackbridge import media_layout
from trackbridge.backends.base import Reader
from trackbridge.errors import TrackbridgeError
from trackbridge.model import ArtifactInfo, MediaPoint, MediaSeries, RunRecord
from trackbridge.sync.retry import Retry

#: where a destination without per-file metadata keeps ``RunRecord.artifact_meta`` (JSON).
ARTIFACT_META_FILE = "trackbridge/artifact_meta.json"


def is_rich_file(path: str) -> bool:
    """A file that carries media or metadata, not an ordinary artifact of the run."""
    return media_layout.is_media_file(path) or path == ARTIFACT_META_FILE


def plain_files(artifacts: Iterable[ArtifactInfo]) -> list[ArtifactInfo]:
    """``artifacts`` without the files :func:`is_rich_file` names."""
    return [a for a in artifacts if not is_rich_file(a.path)]


class RichView:
    """Media and artifact metadata of one reader's runs, native or kept as files."""

    def __init__(self, reader: Reader, retry: Retry | None = None) -> None:
        self.reader = reader
        self.retry = retry or Retry()

    def _text(self, run_id: str, path: str) -> str:
        with tempfile.TemporaryDirectory(prefix="tb-rich-") as tmp:
            local = self.retry.call(self.reader.download_artifact, run_id, path, Path(tmp))
            try:
                return local.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise TrackbridgeError(f"run {run_id}: {path} is not UTF-8 text ({exc.reason})") from None

    def _layout(self, run_id: str, key: str) -> list[MediaPoint]:
        try:
            return media_layout.decode(self._text(run_id, media_layout.index_path(key)))
        except ValueError as exc:
            raise TrackbridgeError(f"run {run_id}: {media_layout.index_path(key)}: {exc}") from None

    def media(self, run: RunRecord, artifacts: Iterable[ArtifactInfo]) -> dict[str, MediaSeries]:
        """Every media series of ``run``: native ones, then those kept as files."""
        out = dict(run.media)
        for key in media_layout.keys_in(artifacts):
            if key not in out:
                out[key] = media_layout.summary(self._layout(run.run_id, key))
        return out

    def points(self, run: RunRecord, key: str) -> list[MediaPoint]:
        """The points of series ``key``, oldest first."""
        if key in run.media:
            return list(self.retry.iterate(lambda: self.reader.iter_media(run.run_id, key)))
        return self._layout(run.run_id, key)

    def fetch(self, run: RunRecord, key: str, point: MediaPoint, dst_dir: Path) -> Path:
        """The file of a file-backed point, downloaded into ``dst_dir``."""
        if key in run.media:
            return self.retry.call(self.reader.download_media, run.run_id, key, point, dst_dir)
        assert point.file is not None
        return self.retry.call(self.reader.download_artifact, run.run_id, point.file, dst_dir)

    def artifact_meta(self, run: RunRecord, artifacts: Iterable[ArtifactInfo]) -> dict[str, dict[str, Any]]:
        """Metadata per file or folder: the platform's own, and what trackbridge kept in
        :data:`ARTIFACT_META_FILE`."""
        out = {path: dict(meta) for path, meta in run.artifact_meta.items()}
        if any(a.path == ARTIFACT_META_FILE for a in artifacts):
            text = self._text(run.run_id, ARTIFACT_META_FILE)
            try:
                kept = json.loads(text)
            except ValueError as exc:
                raise TrackbridgeError(f"run {run.run_id}: {ARTIFACT_META_FILE} is not JSON ({exc})") from None
            out.update({str(k): dict(v) for k, v in kept.items()})
        return out
