"""W&B media in history rows (``wandb.Histogram``, ``wandb.Image``, ``wandb.Table``...)
as canonical media points, and back.

Why here: the SDK turns a logged media object into a dict with a ``_type`` (the
class's ``_log_type``: ``histogram``, ``image-file``, ``table-file``...), and wandb-core
writes that dict *flattened* into the history record: items with ``nested_key``
``["examples", "_type"]``, ``["examples", "width"]``...  A reader that joins nested
keys with dots and keeps numbers makes fake metric series of it (``examples.width``,
``preds.nrows``).  So a row's items are grouped first: every prefix that has a
``_type`` item is one media value, its items are no metrics.

Canonical form (:class:`~trackbridge.model.MediaPoint`, shared by every platform):

* histogram: ``data = {"bins", "values"}`` (W&B's own shape);
* image / audio / video / html / object3d / molecule: ``file`` = the path in the run's
  files (``media/images/...``), ``caption``, ``meta`` = what W&B stores beside it but
  ``_type``, ``path``, ``caption`` and what the file's bytes give (``sha256``, ``size``);
* table: ``data`` = the table file's JSON (``{"columns", "data"}``); plotly: ``data`` =
  the figure's JSON.  Their ``ncols``/``nrows``/``sha256``/``size`` follow from it, and the
  references to the SDK's ``run_table`` artifact (``artifact_path``,
  ``_latest_artifact_path``) name a client-side artifact no copy has: not carried;
* a list (``[wandb.Image(...), ...]``: ``images/separated``, ``videos``, ``audio``,
  ``html``, ``object3D``, ``molecule``) is one point per element at the row's step.

The writer (:func:`history_value`) writes the SDK's dicts, each file under
``media/<kind dir>/<key>_<step>_<sha256[:20]>.<ext>`` as the SDK names them.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from trackbridge.model import MediaPoint

#: history ``_type`` of one value -> canonical kind.
SINGLE_KINDS = {
    "histogram": "histogram",
    "image-file": "image",
    "table-file": "table",
    # a table logged with log_mode="INCREMENTAL": each point holds the rows added then
    "incremental-table-file": "table",
    "audio-file": "audio",
    "video-file": "video",
    "html-file": "html",
    "plotly-file": "plotly",
    "object3D-file": "object3d",
    "molecule-file": "molecule",
}
#: history ``_type`` of a list of values -> (canonical kind, field holding the elements'
#: dicts or ``None`` where only ``filenames``/``captions`` are kept).
LIST_KINDS = {
    "images/separated": ("image", None),
    "audio": ("audio", "audio"),
    "videos": ("video", "videos"),
    "html": ("html", "html"),
    "object3D": ("object3d", "objects"),
    "molecule": ("molecule", None),
}
#: kinds whose payload is the JSON of their file (``data``), not a file.
DATA_FILE_KINDS = frozenset({"table", "plotly"})
#: fields that follow from the file or name it, never kept in ``meta``.
DERIVED = frozenset({"_type", "path", "sha256", "size", "caption", "ncols", "nrows", "artifact_path",
                     "_latest_artifact_path"})
#: key of the fields of a point's ``meta`` that the W&B dict keeps for itself (``size``,
#: ``path``... given by another platform): written apart, read back into ``meta``.
KEPT_META = "trackbridge.meta"
#: canonical kind -> (``_type`` written, media sub-folder, file suffix when the source names none).
WRITTEN = {
    "histogram": ("histogram", "", ""),
    "image": ("image-file", "images", ".png"),
    "table": ("table-file", "table", ".table.json"),
    "audio": ("audio-file", "audio", ".wav"),
    "video": ("video-file", "videos", ".mp4"),
    "html": ("html-file", "html", ".html"),
    "plotly": ("plotly-file", "plotly", ".plotly.json"),
    "object3d": ("object3D-file", "object3D", ".pts.json"),
    "molecule": ("molecule-file", "molecule", ".pdb"),
}
#: the kinds this backend writes and reads back exactly (``Features.media_kinds``).
NATIVE_KINDS = frozenset(WRITTEN)


def kind_of(value: Any) -> str | None:
    """The canonical kind of a history value, ``None`` if it is not media W&B logs."""
    if not isinstance(value, dict):
        return None
    t = value.get("_type")
    if not isinstance(t, str):
        return None
    return SINGLE_KINDS.get(t) or (LIST_KINDS[t][0] if t in LIST_KINDS else None)


def group(items: Iterable[tuple[list[str], Any]]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A row's (key path, value) items as (scalar key -> value, media key -> its dict).

    A media value is every item under a prefix that has a ``_type`` item (wandb-core's
    flattened form), or one item whose value is a dict with a ``_type`` (the form of
    older writers).  Keys are the path joined with dots, as W&B names them."""
    pairs = list(items)
    prefixes = {tuple(path[:-1]) for path, value in pairs
                if len(path) > 1 and path[-1] == "_type" and isinstance(value, str)}
    scalars: dict[str, Any] = {}
    media: dict[str, dict[str, Any]] = {}
    for path, value in pairs:
        under = next((p for p in _prefixes(path) if p in prefixes), None) if prefixes else None
        if under is not None:
            node = media.setdefault(".".join(under), {})
            rest = path[len(under):]
            for part in rest[:-1]:
                child = node.get(part)
                node = node.setdefault(part, {}) if not isinstance(child, dict) else child
            node[rest[-1]] = value
            continue
        key = path[0] if len(path) == 1 else ".".join(path)
        if isinstance(value, dict) and kind_of(value):
            media[key] = value
        else:
            scalars[key] = value
    return scalars, media


def _prefixes(path: list[str]) -> Iterable[tuple[str, ...]]:
    for n in range(1, len(path)):
        yield tuple(path[:n])


def points(value: dict[str, Any], step: int, timestamp: int) -> list[MediaPoint]:
    """The canonical points of one history media value (several for a list)."""
    t = value.get("_type")
    if t in SINGLE_KINDS:
        return [_single(SINGLE_KINDS[t], value, step, timestamp)]
    kind, field = LIST_KINDS[t]
    if field and isinstance(value.get(field), list):
        return [_single(kind, v, step, timestamp) for v in value[field] if isinstance(v, dict)]
    names = value.get("filenames") or []
    captions = value.get("captions") or []
    shared = {k: v for k, v in value.items() if k in ("format", "width", "height")}
    if kind == "image" and names and not str(names[0]).startswith("media/"):
        names = [f"media/images/{n}" for n in names]
    return [MediaPoint(step, timestamp, kind, file=str(name),
                       caption=str(captions[i]) if i < len(captions) and captions[i] is not None else None,
                       meta=dict(shared)) for i, name in enumerate(names)]


def _single(kind: str, value: dict[str, Any], step: int, timestamp: int) -> MediaPoint:
    own = DERIVED | {"bins", "values"} if kind == "histogram" else DERIVED
    meta = {k: v for k, v in value.items() if k not in own}
    kept = meta.pop(KEPT_META, None)
    if isinstance(kept, dict):
        meta.update(kept)
    caption = value.get("caption")
    caption = None if caption is None else str(caption)
    if kind == "histogram":
        data = {"bins": value.get("bins"), "values": value.get("values")} if "bins" in value else \
            {k: v for k, v in value.items() if k not in ("_type", KEPT_META)}
        return MediaPoint(step, timestamp, kind, data=data, meta=meta)
    return MediaPoint(step, timestamp, kind, file=str(value.get("path") or "") or None, caption=caption, meta=meta)


def list_files(value: dict[str, Any]) -> list[str]:
    """The run files a media value names (kept out of the run's plain files)."""
    return [p.file for p in points(value, 0, 0) if p.file]


def with_data(point: MediaPoint, files_dir: Path) -> MediaPoint:
    """A table or plotly point with its file's JSON as ``data`` (the canonical form)."""
    if point.kind not in DATA_FILE_KINDS or not point.file:
        return point
    local = files_dir.joinpath(*PurePosixPath(point.file).parts)
    try:
        data = json.loads(local.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    return MediaPoint(point.step, point.timestamp, point.kind, data=data, file=None, caption=point.caption,
                      meta=point.meta)


def history_value(key: str, point: MediaPoint, local: Path | None, files_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The SDK's history dict for ``point`` and the run file it wrote (``None`` for a
    histogram): the file copied into ``files_dir`` under the SDK's name."""
    t, folder, suffix = WRITTEN[point.kind]
    own = DERIVED | {"bins", "values", KEPT_META} if point.kind == "histogram" else DERIVED | {KEPT_META}
    meta = {k: v for k, v in point.meta.items() if k not in own}
    clashing = {k: v for k, v in point.meta.items() if k in own}
    if clashing:
        meta[KEPT_META] = clashing
    if point.kind == "histogram":
        data = point.data if isinstance(point.data, dict) else {}
        return {**meta, **data, "_type": t}, None
    if point.kind in DATA_FILE_KINDS:
        body = json.dumps(point.data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    elif local is not None:
        body = local.read_bytes()
        name = PurePosixPath(point.file or local.name).name
        suffix = "".join(PurePosixPath(name).suffixes[-2:]) if name.endswith(".table.json") else \
            (PurePosixPath(name).suffix or suffix)
    else:
        raise ValueError(f"media {key!r} at step {point.step}: a {point.kind} point needs its file")
    sha = hashlib.sha256(body).hexdigest()
    rel = f"media/{folder}/{key}_{point.step}_{sha[:20]}{suffix}"
    dst = files_dir.joinpath(*PurePosixPath(rel).parts)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(body)
    value: dict[str, Any] = {**meta, "_type": t, "path": rel, "sha256": sha, "size": len(body)}
    if point.kind == "table" and isinstance(point.data, dict):
        value["ncols"] = len(point.data.get("columns") or [])
        value["nrows"] = len(point.data.get("data") or [])
    if point.caption is not None:
        value["caption"] = point.caption
    return value, rel
