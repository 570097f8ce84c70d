"""``dir:PATH``: the vendor-neutral archive as a trackbridge :class:`Backend`."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trackbridge.backends.archive.info import INFO
from trackbridge.backends.base import Backend, BackendInfo, Features, Limits
from trackbridge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.backends.archive.reader import ArchiveReader
    from trackbridge.backends.archive.writer import ArchiveWriter


class ArchiveBackend(Backend):
    """An archive folder.  Options: ``path`` (required), ``part_points`` (metric
    points buffered per run before a part is written; bounds writer memory).

    One reader and one writer per backend instance, so that every thread of a
    copy shares the same per-run locks and metric buffers.  Both are imported
    on first use: they pull in pyarrow, which listing backends should not."""

    info: ClassVar[BackendInfo] = INFO
    #: the archive holds every canonical field as it is.  Versions are stored under
    #: their source number, so a second copy finds the first instead of duplicating:
    #: nothing ever needs deleting.  Media series are files in the documented layout of
    #: :mod:`trackbridge.media_layout`, which the engine writes and reads for it.
    features: ClassVar[Features] = Features().disable("version_deletion", "media_kinds")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if not self.options.get("path"):
            raise ConfigError("the dir backend needs a path, e.g. dir:./backup")
        self.path = Path(str(self.options["path"])).expanduser()
        self._reader: ArchiveReader | None = None
        self._writer: ArchiveWriter | None = None

    def limits(self) -> Limits:
        from trackbridge.backends.archive.writer import ARCHIVE_LIMITS

        return ARCHIVE_LIMITS

    def reader(self) -> ArchiveReader:
        from trackbridge.backends.archive.reader import ArchiveReader

        if self._reader is None:
            self._reader = ArchiveReader(self.path)
        return self._reader

    def writer(self) -> ArchiveWriter:
        from trackbridge.backends.archive.writer import DEFAULT_PART_POINTS, ArchiveWriter

        if self._writer is None:
            self._writer = ArchiveWriter(self.path, part_points=self._part_points(DEFAULT_PART_POINTS))
        return self._writer

    def _part_points(self, default: int) -> int:
        raw = self.options.get("part_points", default)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = 0
        if value < 1:
            raise ConfigError(f"dir: option part_points must be a positive integer, not {raw!r}")
        return value

    def describe(self) -> str:
        return f"dir:{self.path}"
