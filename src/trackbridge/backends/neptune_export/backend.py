"""``neptune-export:PATH``: what neptune-exporter wrote, as a read-only trackbridge source."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trackbridge.backends.base import BackendInfo, Features, ReadOnlyBackend, RegistryScheme
from trackbridge.backends.neptune_export.info import INFO
from trackbridge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.backends.neptune_export.reader import NeptuneExportReader

#: what an export holds: runs with name, times, owner, tags (labels), description, a failed
#: flag, forks (nesting), params, metric series, text/histogram/image series, files.  No
#: key/value tags of the user's own, summary, inputs, system metrics apart; the 2.x model
#: registry is not read yet.
NEPTUNE_EXPORT_FEATURES = Features(
    key_value_tags=False, summary=False, inputs=False, system_metrics=False, registry=RegistryScheme.NONE,
    tag_deletion=False, run_rename=False, alias_removal=False, run_deletion=False, version_deletion=False,
    model_metadata=False, stages=False, artifact_meta=False,
    media_kinds=frozenset({"text", "histogram", "image"}))


class NeptuneExportBackend(ReadOnlyBackend):
    """neptune-exporter's output.  Option: ``path`` (its ``exports`` folder, or the data folder
    with ``files`` beside it)."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = NEPTUNE_EXPORT_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if not self.options.get("path"):
            raise ConfigError("the neptune-export backend needs a path, e.g. neptune-export:./exports")
        self.path = Path(str(self.options["path"])).expanduser()
        self._reader: NeptuneExportReader | None = None

    def reader(self) -> NeptuneExportReader:
        from trackbridge.backends.neptune_export.reader import NeptuneExportReader

        if self._reader is None:
            self._reader = NeptuneExportReader(self.path, self.name)
        return self._reader

    def describe(self) -> str:
        return f"neptune-export:{self.path}"
