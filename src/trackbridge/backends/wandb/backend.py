"""The W&B backends: ``wandb-offline:PATH`` (offline run folders, read and written
directly) and ``wandb`` (the cloud or a W&B server, through the SDK).

Importing this module does not import wandb: readers and writers import it lazily.
"""
from __future__ import annotations

import shlex

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from trackbridge.backends.base import Backend, BackendInfo, Features, Limits, RegistryScheme, Timestamps
from trackbridge.backends.wandb.info import INFO, OFFLINE_INFO
from trackbridge.backends.wandb.media import NATIVE_KINDS
from trackbridge.backends.wandb.values import project_name
from trackbridge.errors import ConfigError

#: W&B holds history as rows with one time each; tags are labels; no nesting, no
#: settable user; steps strictly increase (trackbridge keeps the user's step in
#: ``trackbridge/step``, so nothing is dropped).  Runs cannot be renamed or tags
#: deleted through the offline files in a way ``wandb sync`` replays reliably.
WANDB_FEATURES = Features(
    nested_runs=False,
    settable_start_time=False,
    settable_end_time=False,
    settable_user=False,
    key_value_tags=False,
    labels=True,
    summary=True,
    notes=True,
    #: dataset inputs are kept in config ``trackbridge.inputs`` (W&B has no such field)
    inputs=True,
    #: the SDK logs its own system metrics; copied ones can only be history keys
    system_metrics=False,
    strictly_increasing_steps=False,
    history_rows=True,
    timestamps=Timestamps.ROW,
    #: versions are links of a run's model artifact into a registry collection (:mod:`.registry`)
    registry=RegistryScheme.INTEGER,
    reserved_aliases=frozenset({"latest"}),
    tag_deletion=False,
    run_rename=False,
    alias_removal=False,
    run_deletion=False,
    version_deletion=False,
    idempotent_create=True,  # run ids derived from the source run (ids.py)
    #: a version's stage is kept in its entry of config ``trackbridge.registry``
    stages=True,
    # not written natively yet: the engine keeps them as files / declares them
    artifact_meta=False,
    media_kinds=frozenset(),
)

#: offline files carry the run's start time (the run record's ``start_time``) exactly;
#: registry versions are links ``wandb sync`` replays, numbered from 1 for W&B's v0
#: (:mod:`.registry`); an alias moves, but cannot be removed through the files.
#: The files also hold what the canonical model has beyond series: media as the SDK's
#: history values (:mod:`.media`), artifact metadata as W&B artifacts, logged models'
#: metadata in their artifacts, a version's stage in config ``trackbridge.registry``.
OFFLINE_FEATURES = Features(**{**WANDB_FEATURES.__dict__, "settable_start_time": True,
                               "system_metrics": True, "tag_deletion": True, "run_rename": True,
                               "run_deletion": True, "stages": True, "artifact_meta": True,
                               "model_metadata": True, "media_kinds": NATIVE_KINDS})


class WandbBackend(Backend):
    """W&B cloud or a W&B server (``wandb`` / ``wandb:ENTITY/PROJECT``).  Options (or the
    env vars): ``api_key`` (``WANDB_API_KEY``), ``entity`` (``WANDB_ENTITY``), ``project``
    (``WANDB_PROJECT``), ``base_url`` (``WANDB_BASE_URL``), ``mode`` (``WANDB_MODE``:
    ``offline`` logs offline runs), ``probe_timeout`` / ``init_timeout`` (seconds, see
    :mod:`.live_writer`)."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = WANDB_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._reader = None
        self._writer = None

    @property
    def offline(self) -> bool:
        import os

        mode = str(self.options.get("mode") or os.environ.get("WANDB_MODE") or "online").lower()
        return mode in ("offline", "dryrun")

    def reader(self):  # type: ignore[no-untyped-def]
        """The cloud through ``wandb.Api``; in offline mode the SDK's offline runs
        (``$WANDB_DIR/wandb``), which is where the writer's runs are then."""
        if self._reader is None:
            if self.offline:
                import os

                from trackbridge.backends.wandb.offline_reader import WandbOfflineReader

                root = Path(str(self.options.get("dir") or os.environ.get("WANDB_DIR") or ".")) / "wandb"
                self._reader = WandbOfflineReader(root, self.name)
            else:
                from trackbridge.backends.wandb.cloud_reader import WandbCloudReader

                self._reader = WandbCloudReader(self.name, self.options)
        return self._reader

    def limits(self) -> Limits:
        from trackbridge.backends.wandb.live_writer import LIMITS

        return LIMITS

    def writer(self):  # type: ignore[no-untyped-def]
        from trackbridge.backends.wandb.live_writer import WandbLiveWriter

        if self._writer is None:
            self._writer = WandbLiveWriter(self.name, self.options)
        return self._writer

    def describe(self) -> str:
        import os

        url = self.options.get("base_url") or os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
        return f"wandb:{url}"

    def experiment_name(self, name: str) -> str:
        return project_name(name)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class WandbOfflineBackend(Backend):
    """W&B offline run folders.  Options: ``path`` (required); ``strict`` (a damaged
    ``.wandb`` file is an error instead of a warning; default off); ``entity`` and
    ``project`` (written into new runs' records, for ``wandb sync``); ``registry`` (the
    W&B registry models are linked into, default ``model``) and ``organization``."""

    info: ClassVar[BackendInfo] = OFFLINE_INFO
    features: ClassVar[Features] = OFFLINE_FEATURES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if not self.options.get("path"):
            raise ConfigError("the wandb-offline backend needs a path, e.g. wandb-offline:./wandb")
        self.path = Path(str(self.options["path"])).expanduser()
        self._reader = None
        self._writer = None

    def reader(self):  # type: ignore[no-untyped-def]
        from trackbridge.backends.wandb.offline_reader import WandbOfflineReader

        if self._reader is None:
            self._reader = WandbOfflineReader(self.path, self.name, strict=_flag(self.options.get("strict", "")))
        return self._reader

    def limits(self) -> Limits:
        from trackbridge.backends.wandb.offline_writer import LIMITS

        return LIMITS

    def writer(self):  # type: ignore[no-untyped-def]
        from trackbridge.backends.wandb.offline_writer import WandbOfflineWriter

        if self._writer is None:
            self._writer = WandbOfflineWriter(self.path, self.name, entity=self.options.get("entity"),
                                              registry=self.options.get("registry"),
                                              organization=self.options.get("organization"))
        return self._writer

    def describe(self) -> str:
        return f"wandb-offline:{self.path}"

    def experiment_name(self, name: str) -> str:
        return project_name(name)

    def next_steps(self) -> list[str]:
        """The ``wandb sync`` line that uploads the run folders here (with an account:
        ``WANDB_API_KEY``, and ``--entity``/``--project`` where the runs name none)."""
        if not self.path.is_dir() or not any(self.path.glob("offline-run-*")):
            return []
        target = shlex.quote(str(self.path))
        models = list(self.reader().list_registered_models())
        if not models:
            return [f"upload to W&B with: wandb sync {target}/offline-run-*   (needs WANDB_API_KEY; "
                    "add --project NAME to choose the project)"]
        lines = [f"upload to W&B with: for run in {target}/offline-run-*; do wandb sync \"$run\"; done   "
                 f"(needs WANDB_API_KEY; one run after the other, in folder order: W&B numbers the {len(models)} "
                 "registered model(s)' versions and moves their aliases in the order the links arrive, and one "
                 "`wandb sync` of several runs takes them in no set order)"]
        if not self.writer().link_entity:
            lines.append("the registry links here name no W&B entity, which W&B needs to find the registry's "
                         "organization: `wandb sync` uploads the runs but fails those links. To link them, "
                         "copy into a new folder with WANDB_ENTITY=TEAM set (or a named remote's entity option)")
        return lines
