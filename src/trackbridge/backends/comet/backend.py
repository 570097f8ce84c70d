"""The Comet backends: ``comet-offline:PATH`` (archives) and ``comet`` (Comet's cloud).

Importing this module does not import comet_ml: readers and writers import it
(or not: the offline archive is read and written without the SDK) on first use.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trackbridge.backends.base import Backend, BackendInfo, Features, Limits, RegistryScheme, Timestamps
from trackbridge.backends.comet.info import INFO, OFFLINE_INFO
from trackbridge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.backends.comet.cloud_reader import CometCloudReader
    from trackbridge.backends.comet.live_writer import CometLiveWriter
    from trackbridge.backends.comet.offline_reader import CometOfflineReader
    from trackbridge.backends.comet.offline_writer import CometOfflineWriter

#: What a Comet experiment holds (offline archive and cloud alike).
COMET_FEATURES = Features(
    nested_runs=False,  # Comet has no nesting: the engine keeps the parent in a tag
    settable_start_time=True,  # experiment.json start_time, sent by `comet upload`
    settable_end_time=True,
    settable_user=False,  # the uploader's API key decides
    key_value_tags=False,  # Comet tags are labels; key/value tags become "others"
    labels=True,
    summary=True,  # as others trackbridge.summary.<key> (JSON)
    notes=True,  # as the other trackbridge.notes
    inputs=True,  # as the other trackbridge.inputs (JSON)
    system_metrics=True,  # sys.* metrics
    strictly_increasing_steps=False,
    history_rows=True,  # rows by step: each point gets the epoch of its step
    timestamps=Timestamps.POINT,
    registry=RegistryScheme.SEMVER,
    tag_deletion=False,
    run_rename=True,
    alias_removal=False,
    run_deletion=True,
    version_deletion=False,  # a duplicate version left by two copies at once stays (reported by check)
    idempotent_create=True,  # experiment keys derived from the source run
    model_metadata=True,  # in the model files' upload metadata (params as Comet shows them)
    stages=True,  # the version's Comet status
    artifact_meta=True,  # in the asset's upload metadata
    # the kinds comet_ml logs natively and the readers give back exactly; html is read
    # (log_html) but Comet's one HTML tab has no series key or steps to write it back
    media_kinds=frozenset({"histogram", "image", "text", "audio", "video"}),
)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class CometOfflineBackend(Backend):
    """A folder of Comet offline archives (or one ``.zip``).  Options: ``path``
    (required), ``recover`` (read damaged archives up to the damage), ``workspace``
    and ``project_name`` (written into new archives' ``experiment.json``)."""

    info: ClassVar[BackendInfo] = OFFLINE_INFO
    features: ClassVar[Features] = COMET_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if not self.options.get("path"):
            raise ConfigError("the comet-offline backend needs a path, e.g. comet-offline:./comet-archives")
        self.path = Path(str(self.options["path"])).expanduser()
        self._reader: CometOfflineReader | None = None
        self._writer: CometOfflineWriter | None = None

    def reader(self) -> CometOfflineReader:
        from trackbridge.backends.comet.offline_reader import CometOfflineReader

        if self._reader is None:
            self._reader = CometOfflineReader(self.path, self.name, recover=_flag(self.options.get("recover", False)))
        return self._reader

    def limits(self) -> Limits:
        from trackbridge.backends.comet.offline_writer import COMET_LIMITS

        return COMET_LIMITS

    def writer(self) -> CometOfflineWriter:
        from trackbridge.backends.comet.offline_writer import CometOfflineWriter

        if self._writer is None:
            if self.path.suffix == ".zip" and not self.path.is_dir():
                raise ConfigError(f"comet-offline: {self.path} is an archive; a destination is a folder of archives")
            self._writer = CometOfflineWriter(
                self.path, self.name, workspace=self.options.get("workspace"),
            )
        return self._writer

    def describe(self) -> str:
        return f"comet-offline:{self.path}"

    def next_steps(self) -> list[str]:
        """The ``comet upload`` line for the folder, with ``COMET_OFFLINE_SAMPLING_SIZE``
        high enough for its longest series, and a warning per series the default would
        sample."""
        from trackbridge.backends.comet.upload import archive_upload_command

        if not self.path.is_dir() or not any(self.path.glob("*.zip")):
            return []
        command, warnings = archive_upload_command(self.path)
        return [f"upload to Comet with: {command}", *warnings]


#: Comet's cloud: what a live experiment cannot set is kept by the engine in tags.
#: Asset metadata and media are written and read through the offline archive only so
#: far: the live writer and the cloud reader do not carry them (the engine keeps them as
#: files).  Model metadata goes with the model's files; stages are the registry status.
COMET_CLOUD_FEATURES = COMET_FEATURES.disable("settable_start_time", "settable_end_time", "run_deletion",
                                              "artifact_meta", "media_kinds")


class CometBackend(Backend):
    """Comet's cloud or a self-hosted Comet.  Options (else the env vars Comet's SDK
    reads): ``api_key`` (``COMET_API_KEY``), ``workspace`` (``COMET_WORKSPACE``),
    ``project_name`` (``COMET_PROJECT_NAME``), ``url`` (``COMET_URL_OVERRIDE``);
    ``offline_directory`` where runs go when Comet cannot be reached (default
    ``./comet-offline``) and ``probe_timeout`` seconds for that check (default 2)."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = COMET_CLOUD_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._writer: CometLiveWriter | None = None
        self._reader: CometCloudReader | None = None

    def limits(self) -> Limits:
        from trackbridge.backends.comet.offline_writer import COMET_CLOUD_LIMITS

        return COMET_CLOUD_LIMITS

    def writer(self) -> CometLiveWriter:
        from trackbridge.backends.comet.live_writer import CometLiveWriter

        if self._writer is None:
            self._writer = CometLiveWriter(self.options, self.name)
        return self._writer

    def reader(self) -> CometCloudReader:
        from trackbridge.backends.comet.cloud_reader import CometCloudReader

        if self._reader is None:
            self._reader = CometCloudReader(self.options, self.name)
        return self._reader

    def next_steps(self) -> list[str]:
        """Runs that went to the offline folder because Comet could not be reached."""
        if self._writer is None or not self._writer.offline_runs:
            return []
        from trackbridge.backends.comet.upload import archive_upload_command

        command, warnings = archive_upload_command(self._writer.offline_dir)
        return [f"{len(self._writer.offline_runs)} run(s) could not reach Comet and are in "
                f"{self._writer.offline_dir}; upload them with: {command}", *warnings]

    def describe(self) -> str:
        from urllib.parse import urlparse

        url = self.options.get("url") or "COMET_URL_OVERRIDE or www.comet.com"
        host = urlparse(url).netloc if "://" in str(url) else url
        ws = self.options.get("workspace")
        return f"comet at {host}" + (f" (workspace {ws})" if ws else "")
