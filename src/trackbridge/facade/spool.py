"""The durable local spool: what a backend could not take yet, kept on disk until it can.

Layout, per backend (remote name) and local run id, under ``<TRACKBRIDGE_HOME>/spool/<remote>/``::

    <id>.jsonl        the ops, one JSON object a line, appended and fsync'd
    <id>.state.json   RunState (remote run id, offset of the first unconfirmed op,
                      logged models, registered versions) + where the backend is
    <id>.files/       staged copies of artifacts and models (also used while live)
    <id>.lock         held (flock) by the process that owns the run while it runs

Why an offset in a sidecar rather than rewriting the log: appends stay cheap and
crash-safe, and a replay interrupted at any point resumes after the last op the
platform confirmed, so nothing confirmed is sent twice.  The state file is
replaced atomically (write + fsync + rename).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from trackbridge.facade.ops import RunState

try:  # POSIX; elsewhere spools are not locked (documented gap)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

SPOOL_FORMAT = 1
_SECRET_OPTION = re.compile(r"token|password|secret|key|credential", re.IGNORECASE)
_USERINFO = re.compile(r"://[^/@\s]*@")


def spool_root(home: Path) -> Path:
    return Path(home) / "spool"


def safe_options(options: dict[str, Any]) -> dict[str, Any]:
    """Backend options worth recording to reopen it at replay: never secrets, never
    URLs with credentials in them (replay then takes them from the config again)."""
    return {
        key: value for key, value in options.items()
        if not _SECRET_OPTION.search(key) and not (isinstance(value, str) and _USERINFO.search(value))
    }


class Spool:
    """The spool files of one local run at one backend."""

    def __init__(self, folder: Path, local_id: str) -> None:
        self.folder = Path(folder)
        self.local_id = local_id
        self.log_path = self.folder / f"{local_id}.jsonl"
        self.state_path = self.folder / f"{local_id}.state.json"
        self.files_dir = self.folder / f"{local_id}.files"
        self._lock_path = self.folder / f"{local_id}.lock"
        self._lock_fd: int | None = None

    # -- the op log ---------------------------------------------------------

    def has_log(self) -> bool:
        return self.log_path.is_file()

    def append(self, ops: Iterable[dict[str, Any]]) -> int:
        """Append ``ops`` durably (flush + fsync); return how many were written."""
        lines = [json.dumps(op, allow_nan=True, separators=(",", ":")) + "\n" for op in ops]
        if not lines:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        return len(lines)

    def read_from(self, offset: int) -> Iterator[tuple[dict[str, Any], int]]:
        """``(op, offset after it)`` for every complete line from ``offset`` on.

        A last line without its newline is an append in progress (or cut by a
        crash): it is left for later, never half-parsed.
        """
        if not self.has_log():
            return
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    return
                offset += len(raw)
                if raw.strip():
                    yield json.loads(raw), offset

    def size(self) -> int:
        return self.log_path.stat().st_size if self.has_log() else 0

    # -- state --------------------------------------------------------------

    def load(self) -> tuple[RunState, dict[str, Any]]:
        """``(run state, metadata)``; metadata names the remote and holds the create op's facts."""
        if not self.state_path.is_file():
            return RunState(), {}
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        return RunState.from_json(data.get("state", {})), data.get("meta", {})

    def save(self, state: RunState, meta: dict[str, Any]) -> None:
        """Replace the state file atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        payload = {"format": SPOOL_FORMAT, "meta": meta, "state": state.to_json()}
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(payload, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    # -- staging ------------------------------------------------------------

    def stage(self, src: Path, seq: int, name: str | None = None, link_from: Path | None = None) -> str:
        """Copy ``src`` (file or folder) into the staging folder; return its relative path.

        Why copy at log time: users log files from temporary folders that are gone
        by the time the background thread uploads.  ``link_from`` is an earlier
        staged copy of the same file (fan-out): hard-linked instead of copied again.
        """
        relative = f"{seq}/{name or src.name}"
        dst = self.files_dir / relative
        dst.parent.mkdir(parents=True, exist_ok=True)
        source = link_from or src
        if source.is_dir():
            shutil.copytree(source, dst, copy_function=_link_or_copy if link_from else shutil.copy2)
        elif link_from is not None:
            _link_or_copy(str(source), str(dst))
        else:
            shutil.copy2(source, dst)
        return relative

    def write_text(self, seq: int, name: str, text: str) -> str:
        """Stage a file with ``text`` (e.g. the full value of a truncated param)."""
        relative = f"{seq}/{name}"
        dst = self.files_dir / relative
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text, encoding="utf-8")
        return relative

    # -- ownership ----------------------------------------------------------

    def try_lock(self) -> bool:
        """Take the run's lock without waiting; ``False`` if another owner holds it."""
        if fcntl is None or self._lock_fd is not None:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def complete(self, state: RunState, meta: dict[str, Any]) -> None:
        """Everything reached the platform: drop the log and staged files, keep the
        small state file (children replayed later still need this run's remote id)."""
        state.offset = 0
        meta = dict(meta, complete=True)
        self.save(state, meta)
        with suppress(FileNotFoundError):
            self.log_path.unlink()
        shutil.rmtree(self.files_dir, ignore_errors=True)
        with suppress(FileNotFoundError):
            self._lock_path.unlink()
        self.unlock()

    def discard_staging(self) -> None:
        """Remove the staging folder of a run that never needed the spool."""
        shutil.rmtree(self.files_dir, ignore_errors=True)
        with suppress(FileNotFoundError):
            self._lock_path.unlink()
        self.unlock()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def pending_spools(root: Path) -> Iterator[tuple[str, Spool]]:
    """``(remote, spool)`` for every run with a spool log under ``root``."""
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for log in sorted(folder.glob("*.jsonl")):
            yield folder.name, Spool(folder, log.name[: -len(".jsonl")])
