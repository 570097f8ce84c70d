"""Media series kept as plain files, where a platform has no native kind for them.

MLflow and the ``dir:`` archive have no histogram or image *series*: a media series
copied there is written as files, in one documented layout, and read back from it
into the same series (so MLflow -> W&B restores native histograms):

    trackbridge/media/<key>/index.jsonl     one JSON line per point, oldest first:
        {"step", "timestamp", "kind", "data", "file", "caption", "meta"}
    trackbridge/media/<key>/files/<n>-<name>  the bytes of file-backed points
                                            (``file`` in the index is this path)

``<key>`` keeps its slashes (``val/hist`` is two folders).  The layout is the only
thing this module knows: who writes and reads the files is the engine's business.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from trackbridge.model import ArtifactInfo, MediaPoint, MediaSeries

MEDIA_DIR = "trackbridge/media"
INDEX = "index.jsonl"
FILES = "files"


def index_path(key: str) -> str:
    """Artifact path of series ``key``'s index."""
    return f"{MEDIA_DIR}/{key}/{INDEX}"


def file_path(key: str, number: int, name: str) -> str:
    """Artifact path of the ``number``-th file of series ``key`` (``name``: its base name)."""
    return f"{MEDIA_DIR}/{key}/{FILES}/{number}-{PurePosixPath(name).name}"


def is_media_file(path: str) -> bool:
    """``path`` belongs to the layout (never copied or compared as an ordinary file)."""
    return path.startswith(MEDIA_DIR + "/")


def keys_in(artifacts: Iterable[ArtifactInfo]) -> list[str]:
    """The media keys whose index is among ``artifacts``."""
    suffix = "/" + INDEX
    return sorted(a.path[len(MEDIA_DIR) + 1:-len(suffix)] for a in artifacts
                  if is_media_file(a.path) and a.path.endswith(suffix))


def encode(points: Sequence[MediaPoint]) -> str:
    """The index text of a series (``file`` already the layout path)."""
    return "".join(json.dumps({"step": p.step, "timestamp": p.timestamp, "kind": p.kind, "data": p.data,
                               "file": p.file, "caption": p.caption, "meta": p.meta},
                              sort_keys=True, ensure_ascii=False, allow_nan=True) + "\n" for p in points)


def decode(text: str) -> list[MediaPoint]:
    """The points of an index; a line that is not one (a hand edit, a torn write) is an error
    naming it, never skipped."""
    points = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            points.append(MediaPoint(int(item["step"]), int(item["timestamp"]), str(item["kind"]), item.get("data"),
                                     item.get("file"), item.get("caption"), dict(item.get("meta") or {})))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"media index line {n} is not a media point ({exc})") from None
    return points


def summary(points: Sequence[MediaPoint]) -> MediaSeries:
    """What a run listing says of a series."""
    return MediaSeries(points[-1].kind if points else "", len(points))
