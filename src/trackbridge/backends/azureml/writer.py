"""Write side of Azure ML: the MLflow writer, fitted to Azure's limits and quirks.

What differs from MLflow, each from Microsoft's service limits page
(``articles/machine-learning/resource-limits-capacity.md``: runs keep at most
50 tags, tag keys <= 100 and values <= 1,000 characters, <= 250 metric rows per
batch upload) or from the errors users met (mlflow/mlflow#11462
``MetricV2Dto ... Limit=250``; #10694 "MaxResults must be less than 1000"):

* metric batches of at most 250 points (:func:`azure_limits`);
* ``mlflow.source.*`` tags are not sent with ``create_run`` (Azure drops them
  there) but set right after;
* ``mlflow.user`` is never sent: Azure sets it to the caller's identity.  A
  user given to :meth:`create_run` (the facade) is kept in
  ``trackbridge.source.user``, as the engine does for copies (``settable_user``
  is off in the backend's Features);
* models: MLflow 3 logged models where the workspace has the API; where it
  answers "no such endpoint", the model's files go to the run's artifacts under
  its name with an ``mlflow.log-model.history`` entry (MLflow 2's layout, which
  the reader lists as the run's model), and versions are registered from
  ``runs:/<run>/<name>``;
* notes and summary values longer than a tag value (1,000) are kept whole in
  the run's files ``trackbridge/fields/`` with a pointer in the tag
  (:mod:`~trackbridge.backends.azureml.fields`);
* registry: versions only from ``runs:/`` of this workspace; MLflow stages are
  carried (``transition_model_version_stage``, the MLflow writer's
  ``set_version_stage``); aliases are set natively and,
  where the workspace refuses the alias API, kept as recorded version tags
  ``trackbridge.alias.<alias>`` (read back as aliases by the reader).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from trackbridge.backends.azureml import fields as long_fields
from trackbridge.backends.azureml.service import (
    ALIAS_TAG_PREFIX,
    HISTORY_PAGE,
    KEPT_USER,
    METRICS_PER_BATCH,
    PLATFORM,
    SOURCE_TAG_PREFIX,
    TAG_USER,
    TAG_VALUE_LENGTH,
    TAGS_PER_RUN,
)
from trackbridge.backends.base import Limits
from trackbridge.backends.mlflow.connection import MlflowConnection
from trackbridge.backends.mlflow.convert import TAG_NOTE, TAG_SUMMARY, summary_from_tag, summary_to_tag
from trackbridge.backends.mlflow.errors import is_not_found, is_unsupported, translated
from trackbridge.backends.mlflow.writer import MlflowWriter, mlflow_limits
from trackbridge.errors import BackendError
from trackbridge.model import LoggedModel, ModelVersion

#: run fields the MLflow writer keeps as tags (counted against the 50 by the engine).
_FIELD_TAGS = frozenset({"name", "parent_run_id", "notes", "summary", "models"})
_ALIAS_MODES = ("auto", "native", "tags")


def azure_limits() -> Limits:
    """MLflow's limits (read from the installed mlflow) narrowed to Azure ML's."""
    base = mlflow_limits()
    changes: dict[str, Any] = {
        "max_metrics_per_batch": min(base.max_metrics_per_batch, METRICS_PER_BATCH),
        "max_tags_per_batch": min(base.max_tags_per_batch, TAGS_PER_RUN),
        "max_tag_value_length": min(base.max_tag_value_length, TAG_VALUE_LENGTH),
        "max_tags_per_run": TAGS_PER_RUN,
        "field_tags": _FIELD_TAGS,
    }
    known = {f.name for f in fields(Limits)}
    return replace(base, **{k: v for k, v in changes.items() if k in known})


def _is_alias_refusal(exc: BaseException) -> bool:
    """The registry does not offer aliases (an unknown endpoint, or a refusal naming aliases)."""
    if is_unsupported(exc):
        return True
    code = getattr(exc, "error_code", "") or ""
    text = str(exc).lower()
    return code in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE", "FEATURE_DISABLED") and "alias" in text \
        or "404" in text and "alias" in text


class AzureMLWriter(MlflowWriter):
    """Writes runs and registry entries into one Azure ML workspace."""

    history_page = HISTORY_PAGE

    def __init__(self, connection: MlflowConnection, platform: str = PLATFORM, aliases: str = "auto") -> None:
        super().__init__(connection, platform)
        self.limits = azure_limits()
        if aliases not in _ALIAS_MODES:
            from trackbridge.errors import ConfigError

            raise ConfigError(f"Azure ML remote: option aliases must be one of {', '.join(_ALIAS_MODES)}, not {aliases!r}.")
        self._alias_mode = aliases
        #: ``False`` once the workspace answered that it has no logged-model API.
        self._logged_models = True

    # -- runs ---------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        user: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        at_create = dict(tags or {})
        after = {k: at_create.pop(k) for k in list(at_create) if k.startswith(SOURCE_TAG_PREFIX)}
        kept_user = at_create.pop(TAG_USER, None) or user
        if kept_user and KEPT_USER not in at_create:
            at_create[KEPT_USER] = kept_user
        run_id = super().create_run(
            experiment_id, name=name, start_time=start_time, user=None, parent_run_id=parent_run_id, tags=at_create
        )
        if after:
            super().set_tags(run_id, after)
        return run_id

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        tags = dict(tags)
        if TAG_USER in tags:
            tags.setdefault(KEPT_USER, tags.pop(TAG_USER))
        super().set_tags(run_id, tags)

    def set_notes(self, run_id: str, notes: str) -> None:
        if len(notes) <= self.limits.max_tag_value_length:
            super().set_notes(run_id, notes)
            return
        long_fields.write_text(self, run_id, long_fields.NOTES_FILE, notes)
        super().set_tags(run_id, {TAG_NOTE: long_fields.pointer(long_fields.NOTES_FILE)})

    def log_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Merged into the run's summary JSON: in the ``trackbridge.summary`` tag while it
        fits, else in the run's file ``trackbridge/fields/summary.json``."""
        if not summary:
            return
        with translated(f"read summary of run {run_id}"):
            raw = self._client.get_run(run_id).data.tags.get(TAG_SUMMARY)
        path = long_fields.target(raw)
        if path:
            from trackbridge.backends.azureml.reader import AzureMLReader

            raw = long_fields.read_text(AzureMLReader(self.connection, self.platform), run_id, path)
        value = summary_to_tag(summary_from_tag(raw), summary)
        if len(value) <= self.limits.max_tag_value_length:
            super().set_tags(run_id, {TAG_SUMMARY: value})
            return
        long_fields.write_text(self, run_id, long_fields.SUMMARY_FILE, value)
        super().set_tags(run_id, {TAG_SUMMARY: long_fields.pointer(long_fields.SUMMARY_FILE)})

    # -- models -------------------------------------------------------------

    def log_model(self, run_id: str, local_dir: Path, source: LoggedModel) -> LoggedModel:
        name = source.name
        if self._logged_models:
            try:
                return super().log_model(run_id, local_dir, source)
            except BackendError as exc:
                if not is_unsupported(exc.__cause__ or exc):
                    raise
                self._logged_models = False
        local_dir = Path(local_dir)
        self.log_artifact(run_id, local_dir, name)
        meta = _mlmodel(local_dir)
        flavors = sorted(meta.get("flavors") or {}) if isinstance(meta.get("flavors"), dict) else []
        entry = {"run_id": run_id, "artifact_path": name, "flavors": {f: {} for f in flavors}}
        if meta.get("model_id"):  # the logged model these files were, for registering versions of it
            entry["model_id"] = str(meta["model_id"])
        with translated("read the run's model history", run_id):
            current = self._client.get_run(run_id).data.tags.get(_MODEL_HISTORY)
        history = _history(current) + [entry]
        super().set_tags(run_id, {_MODEL_HISTORY: json.dumps(history, separators=(",", ":"))})
        return LoggedModel(name=name, artifact_path=name, flavors=flavors)

    # -- registry -----------------------------------------------------------

    def create_model_version(self, version: ModelVersion, run_id: str | None) -> ModelVersion:
        """MLflow's version creation, then the aliases (natively or as tags).  The stage
        is set by the engine afterwards (:meth:`set_version_stage`), as for MLflow."""
        aliases = list(version.aliases)
        if run_id and not version.model_id and version.source.startswith("models:/"):
            version = self._as_run_model(version, run_id)
        created = super().create_model_version(replace(version, aliases=[]), run_id)
        for alias in aliases:
            self.set_model_alias(version.name, alias, created.version)
        return replace(created, aliases=sorted(aliases))

    def _as_run_model(self, version: ModelVersion, run_id: str) -> ModelVersion:
        """A version of a logged model that this workspace keeps as run artifacts
        (:meth:`log_model`'s fallback): registered from ``runs:/<run>/<its folder>``."""
        wanted = version.source[len("models:/"):]
        with translated("read the run's model history", run_id):
            entries = _history(self._client.get_run(run_id).data.tags.get(_MODEL_HISTORY))
        paths = [e.get("artifact_path") for e in entries if isinstance(e, dict) and e.get("artifact_path")]
        matching = [e["artifact_path"] for e in entries if isinstance(e, dict) and e.get("model_id") == wanted]
        path = matching[0] if matching else paths[0] if len(paths) == 1 else None
        if path is None:
            return version
        return replace(version, source=f"runs:/{run_id}/{path}", artifact_path=path)

    def set_model_alias(self, name: str, alias: str, version: str) -> None:
        if self._alias_mode != "tags":
            try:
                with translated(f"set alias {alias!r} of model {name!r} to version {version}"):
                    self._client.set_registered_model_alias(name, alias, str(version))
                return
            except Exception as exc:  # noqa: BLE001 - decide on the cause below
                cause = exc.__cause__ or exc
                if self._alias_mode == "native" or not _is_alias_refusal(cause):
                    raise
        self._set_alias_tag(name, alias, str(version))

    def delete_model_alias(self, name: str, alias: str) -> None:
        if self._alias_mode != "tags":
            try:
                super().delete_model_alias(name, alias)
            except Exception as exc:  # noqa: BLE001
                cause = exc.__cause__ or exc
                if self._alias_mode == "native" or not (_is_alias_refusal(cause) or is_not_found(cause)):
                    raise
        self._clear_alias_tag(name, alias, keep=None)

    def _set_alias_tag(self, name: str, alias: str, version: str) -> None:
        self._clear_alias_tag(name, alias, keep=version)
        with translated(f"record alias {alias!r} of model {name!r} as a tag of version {version}"):
            self._client.set_model_version_tag(name, version, ALIAS_TAG_PREFIX + alias, "")

    def _clear_alias_tag(self, name: str, alias: str, keep: str | None) -> None:
        """Remove the recorded alias from every version but ``keep`` (an alias names one version)."""
        from trackbridge.backends.mlflow.reader import _quote

        key = ALIAS_TAG_PREFIX + alias
        literal = _quote(name)
        if literal is None:
            raise BackendError(f"registered model {name!r} has both quote characters in its name, which "
                               "MLflow's search filter cannot express: its aliases cannot be kept as tags.")
        with translated(f"look up versions of model {name!r} holding alias {alias!r}"):
            holders = [v.version for v in self._client.search_model_versions(f"name = {literal}")
                       if key in (v.tags or {}) and str(v.version) != keep]
            for held in holders:
                self._client.delete_model_version_tag(name, held, key)


_MODEL_HISTORY = "mlflow.log-model.history"


def _history(raw: str | None) -> list[Any]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _mlmodel(local_dir: Path) -> dict[str, Any]:
    """The ``MLmodel`` file of a model folder as a dict (``{}`` without one)."""
    import yaml

    mlmodel = local_dir / "MLmodel"
    if not mlmodel.is_file():
        return {}
    try:
        data = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}
