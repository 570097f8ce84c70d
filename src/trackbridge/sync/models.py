"""Which destination logged model is the copy of which source model.

Models are identified by id, never by name: ``mlflow.sklearn.autolog`` on a grid
search logs a model called ``model`` on every fit, so one run holds several models
of one name, each with its own files and metadata.  A copy carries its source's id
in the tag :data:`~trackbridge.model.SOURCE_MODEL_ID`; a destination that keeps no
model tags (``Features.model_metadata`` off) is paired by name and order of logging,
the one thing it does keep.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from trackbridge.model import ORIGIN_MODEL_ID, SOURCE_MODEL_ID, LoggedModel


def model_key(model: LoggedModel) -> str:
    """The identity of a source model: its id, or its folder for models without one
    (MLflow 2's models, which are run artifacts)."""
    return model.model_id or f"path:{model.artifact_path}"


def as_copy(model: LoggedModel) -> LoggedModel:
    """What the engine asks a writer to log for ``model``: its name and metadata, with
    the tag naming the source model."""
    return LoggedModel(
        name=model.name, artifact_path=model.artifact_path, flavors=list(model.flavors),
        params=dict(model.params), metrics=dict(model.metrics),
        tags={**model.user_tags(), SOURCE_MODEL_ID: model_key(model),
              ORIGIN_MODEL_ID: model.origin_id() or model_key(model)},
        model_type=model.model_type, status=model.status,
    )


def pair_models(
    src: Sequence[LoggedModel], dst: Sequence[LoggedModel]
) -> tuple[list[tuple[LoggedModel, LoggedModel | None]], list[LoggedModel]]:
    """``(source, its copy or None)`` for every source model, and the destination
    models that are the copy of none of them."""
    by_source = {m.origin_id(): m for m in dst if m.origin_id()}
    by_source.update({m.source_id(): m for m in dst if m.source_id()})
    used: set[int] = set()
    pairs: list[tuple[LoggedModel, LoggedModel | None]] = []
    for model in src:
        copy = by_source.get(model_key(model)) or by_source.get(model.origin_id() or "")
        if copy is not None and id(copy) not in used:
            used.add(id(copy))
        else:
            copy = None
        pairs.append((model, copy))
    # destinations without model tags: the k-th model of a name is the k-th of that name
    untagged: dict[str, list[LoggedModel]] = defaultdict(list)
    for model in dst:
        if id(model) not in used and not model.source_id():
            untagged[model.name].append(model)
    for i, (model, copy) in enumerate(pairs):
        if copy is None and untagged.get(model.name):
            found = untagged[model.name].pop(0)
            used.add(id(found))
            pairs[i] = (model, found)
    extra = [m for m in dst if id(m) not in used]
    return pairs, extra
