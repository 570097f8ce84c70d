"""Crash-safe file primitives shared by every part of the archive.

Why: the archive is a backup format.  A process killed at any instant must
leave every file either in its old state or its new one, never half-written.
So every file is first written under a temporary name in the same folder,
flushed to disk, then renamed over the final name with :func:`os.replace`,
which is atomic on POSIX and Windows.  Readers ignore the temporary names.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from trackbridge.errors import BackendError

#: suffix of in-progress files; anything ending with it is ignored by readers.
TMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


def tmp_name(final: Path) -> Path:
    """A unique temporary sibling of ``final`` (unique so concurrent writers never share one)."""
    return final.with_name(f"{final.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")


def atomic_write(final: Path, write: Callable[[IO[bytes]], None], durable: bool = True) -> None:
    """Write ``final`` through ``write(fileobj)`` so that it appears complete or not at all.

    The rename alone survives a killed process (the kernel keeps the bytes); ``durable``
    also survives a machine crash (``fsync`` before the rename), at a few ms a file."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(final)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dump_json(data: Any) -> bytes:
    """JSON as the archive writes it: UTF-8, sorted keys, NaN/Infinity tokens allowed.

    Non-finite floats use the ``NaN``/``Infinity``/``-Infinity`` tokens of
    Python's json module (also read by JSON5 parsers, pandas, jq 1.7) because
    params and summaries may legitimately hold them."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1, allow_nan=True).encode("utf-8")


def write_json(final: Path, data: Any, durable: bool = True) -> None:
    atomic_write(final, lambda fh: fh.write(dump_json(data)), durable)


def read_json(path: Path) -> Any:
    """Parse an archive JSON file; a damaged one raises a :class:`BackendError` naming it."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackendError(
            f"archive file {path} is corrupt ({exc}). It was damaged outside trackbridge "
            "(trackbridge only replaces files atomically): restore it from a backup, or delete "
            "the run/experiment folder holding it and export that run again."
        ) from None


def copy_hashed(src: Path, final: Path) -> tuple[int, str]:
    """Copy ``src`` to ``final`` atomically; return its size and ``sha256:<hex>`` digest.

    The digest is computed while copying so that listing never re-reads the file."""
    digest = hashlib.sha256()
    size = 0

    def write(fh: IO[bytes]) -> None:
        nonlocal size
        with open(src, "rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)

    atomic_write(final, write)
    return size, f"sha256:{digest.hexdigest()}"


def safe_segment(name: str) -> str:
    """A file-name-safe, reversible encoding of an arbitrary name (model names, versions).

    Percent-encoding keeps ordinary names readable; a leading dot is encoded too
    so that no name can be ``..`` or a hidden/temporary file."""
    if not name:
        raise ValueError("an empty name cannot be stored")
    encoded = quote(name, safe=" -_.~@+=,")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def relative_parts(path: str) -> list[str]:
    """Split a relative artifact path, refusing anything that could escape its folder."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or path.startswith("/") or any(p == ".." for p in parts):
        raise BackendError(f"artifact path {path!r} is not a relative path inside the run")
    return parts


def remove_tree(path: Path) -> None:
    """Delete a folder so that readers never see it half-deleted: rename to a hidden name first."""
    doomed = path.with_name(f".deleted-{path.name}-{uuid.uuid4().hex[:8]}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
