"""W&B artifacts of a run as the canonical model sees them: logged models with their
metadata, and the type / description / metadata / aliases of other artifacts
(``RunRecord.artifact_meta``).  Shared by the offline and cloud readers and the writers,
so every W&B form maps them the same way.

* A ``model`` artifact is a logged model.  Names repeat within a run (a model logged
  per fit): the first of a name has ``artifact_path`` = the name, the n-th
  ``<name>#<n>``, so each stays its own model with its own files.  What the canonical
  model keeps per logged model (params, metrics, tags with trackbridge's
  ``trackbridge.source.model_id``, type, status, flavors) is the artifact metadata key
  :data:`MODEL_METADATA_KEY`; the rest of the metadata, the description and the
  aliases (but W&B's own ``latest``) are the model path's ``artifact_meta``.
* Another logged artifact's files are the run's files ``wandb-artifacts/<name>/...``
  (or the path config ``trackbridge.artifact_paths`` names, for an artifact a writer made
  of a run folder), and that path's ``artifact_meta`` is ``{"type", "description",
  "metadata", "aliases", "tags"}`` (the empty ones left out; the type :data:`PLAIN_TYPE` a
  writer gives metadata without a type is left out too).
* ``run_table`` artifacts are where the SDK also keeps a logged ``wandb.Table``: they are
  the table's media point (:mod:`.media`), not files of the run.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trackbridge.model import LoggedModel

#: artifact metadata key holding a logged model's canonical metadata.
MODEL_METADATA_KEY = "trackbridge.model"
#: artifact type a writer gives metadata that names no type (a Comet asset's).
PLAIN_TYPE = "trackbridge-files"
#: artifact types that are no files of the run's own.
TABLE_TYPE = "run_table"
#: where other logged artifacts' files are listed: ``wandb-artifacts/<name>/<path>``.
ARTIFACTS_PREFIX = "wandb-artifacts"
#: W&B's alias for the newest version of a collection: its own, never copied.
LATEST = "latest"


def model_paths(names: Iterable[str]) -> list[str]:
    """The ``artifact_path`` of each model artifact of a run, in log order (see module doc)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen[name] = seen.get(name, 0) + 1
        out.append(name if n == 1 else f"{name}#{n}")
    return out


def logged_model(name: str, path: str, client_id: str | None, metadata: Mapping[str, Any],
                 committed: bool = False) -> LoggedModel:
    """The canonical model of a ``model`` artifact.  One the SDK logged (no canonical
    metadata in it) is ``READY`` once committed (``finalize``), as MLflow says of a model
    whose files are all there."""
    kept = metadata.get(MODEL_METADATA_KEY)
    if not isinstance(kept, Mapping):
        kept = {"status": "READY"} if committed else {}
    return LoggedModel(
        name=name, artifact_path=path, model_id=client_id or None,
        flavors=[str(f) for f in kept.get("flavors") or []],
        params={str(k): str(v) for k, v in (kept.get("params") or {}).items()},
        metrics={str(k): float(v) for k, v in (kept.get("metrics") or {}).items() if isinstance(v, (int, float))},
        tags={str(k): str(v) for k, v in (kept.get("tags") or {}).items()},
        model_type=kept.get("model_type") or None, status=kept.get("status") or None)


def model_metadata(model: LoggedModel, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The artifact metadata a writer gives a model: ``extra`` (the model path's
    ``artifact_meta`` metadata) and the canonical fields under :data:`MODEL_METADATA_KEY`."""
    kept: dict[str, Any] = {}
    for name in ("flavors", "params", "metrics", "tags"):
        value = getattr(model, name)
        if value:
            kept[name] = list(value) if name == "flavors" else dict(value)
    if model.model_type:
        kept["model_type"] = model.model_type
    if model.status:
        kept["status"] = model.status
    return {**dict(extra or {}), MODEL_METADATA_KEY: kept}


def meta_of(kind: str, description: str, metadata: Mapping[str, Any], aliases: Iterable[str],
            tags: Iterable[str] = (), model: bool = False) -> dict[str, Any]:
    """An artifact's ``artifact_meta`` entry (empty fields left out; a model's type is
    implied, and its canonical metadata is the model's own)."""
    out: dict[str, Any] = {}
    if not model and kind and kind != PLAIN_TYPE:
        out["type"] = kind
    if description:
        out["description"] = description
    user = {k: v for k, v in metadata.items() if k != MODEL_METADATA_KEY}
    if user:
        out["metadata"] = user
    kept = sorted({a for a in aliases if a != LATEST})  # a set at W&B: no order to keep
    if kept:
        out["aliases"] = kept
    labels = sorted(set(tags))
    if labels:
        out["tags"] = labels
    return out
