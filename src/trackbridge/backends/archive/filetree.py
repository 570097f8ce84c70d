"""Plain files with a manifest: used for a run's artifacts and for each logged model.

Why a manifest: ``list_artifacts`` must report sizes and digests without
re-hashing gigabytes, and a file copied by a writer that was then killed
must not look complete.  The manifest (``path -> size, digest``) is
rewritten atomically after the files of one call are in place, so it only
ever lists complete files; anything on disk but not in it is ignored.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from trackbridge.backends.archive.files import copy_hashed, read_json, relative_parts, write_json
from trackbridge.errors import BackendError
from trackbridge.model import ArtifactInfo


class FileTree:
    """Files under ``root``, listed by the JSON ``manifest`` beside it.  The caller
    serialises writers (the archive writer holds the run's lock)."""

    def __init__(self, root: Path, manifest: Path) -> None:
        self.root = root
        self.manifest = manifest

    def entries(self) -> dict[str, dict]:
        """``path -> {"size", "digest"}`` of every complete file."""
        if not self.manifest.is_file():
            return {}
        return read_json(self.manifest)["files"]

    def add(self, local: Path, prefix: str | None = None) -> None:
        """Copy a file (to ``prefix/<name>``) or a folder's contents (under ``prefix``)."""
        if local.is_dir():
            sources = {f.relative_to(local).as_posix(): f for f in sorted(local.rglob("*")) if f.is_file()}
        elif local.is_file():
            sources = {local.name: local}
        else:
            raise BackendError(f"cannot log {local}: no such file or folder")
        base = "/".join(relative_parts(prefix)) + "/" if prefix not in (None, "", ".") else ""
        entries = self.entries()
        for rel, src in sources.items():
            path = base + rel
            size, digest = copy_hashed(src, self.root.joinpath(*relative_parts(path)))
            entries[path] = {"size": size, "digest": digest}
        write_json(self.manifest, {"files": dict(sorted(entries.items()))})

    def list(self) -> Iterator[ArtifactInfo]:
        for path, entry in self.entries().items():
            yield ArtifactInfo(path=path, size=entry["size"], digest=entry["digest"])

    def fetch(self, path: str, dst_dir: Path) -> Path:
        """Copy one listed file to ``dst_dir/<path>``; return the copy."""
        parts = relative_parts(path)
        if "/".join(parts) not in self.entries():
            raise BackendError(f"{path!r} is not among the files of {self.root}")
        return self._copy_out(parts, dst_dir)

    def fetch_all(self, dst_dir: Path) -> Path:
        """Copy every file into ``dst_dir`` (created even when the tree is empty)."""
        if not self.manifest.is_file():
            raise BackendError(f"nothing was stored at {self.root} (no {self.manifest.name})")
        dst_dir.mkdir(parents=True, exist_ok=True)
        for path in self.entries():
            self._copy_out(relative_parts(path), dst_dir)
        return dst_dir

    def _copy_out(self, parts: list[str], dst_dir: Path) -> Path:
        target = dst_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root.joinpath(*parts), target)
        return target
