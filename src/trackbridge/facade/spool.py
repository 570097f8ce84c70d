"""The run's write-ahead journal on local disk: every op, before or while it is sent.

Layout, per backend (remote name) and local run id, under ``<TRACKBRIDGE_HOME>/spool/<remote>/``::

    <id>.jsonl        the journal: every op of the run, one JSON object a line (metric
                      batches packed, :mod:`~trackbridge.facade.codec`), appended
                      by the backend's worker threads in batches (one ``write(2)`` per
                      batch, not fsync'd: a killed process loses nothing, a power cut may)
    <id>.state.json   RunState (remote run id; offset of the first op not acknowledged,
                      and which ops after it were acknowledged or started; logged
                      models, registered versions) + where the backend is
    <id>.marks        which ops after the state's offset were started / acknowledged,
                      one short line each (``s|a <epoch> <end offset>``), appended: a
                      rename of the state file per batch costs more than the send
    <id>.files/       staged copies of artifacts and models
    <id>.lock         held (flock) by the process that owns the run while it runs

Why a journal for every run, not only when a backend fails: a process killed with
SIGKILL (the OOM killer, a preempted node) runs no exit handler, so whatever was
only in memory is gone.  With the journal written within ``TRACKBRIDGE_JOURNAL_INTERVAL``
of each call, ``trackbridge replay`` (or the next ``start_run``) sends what the
acknowledgements in the state file say is missing, exactly once.

Why an offset in a sidecar rather than rewriting the log: appends stay cheap and
crash-safe, and a replay interrupted at any point resumes after the last op the
platform confirmed.  The journal is truncated once everything in it is
acknowledged and it has grown past :data:`TRUNCATE_AT`; it is deleted when the run
is complete.  The state file is replaced atomically (write + rename; fsync'd
where ``durable``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from trackbridge.facade.codec import decode, encode
from trackbridge.facade.ops import RunState

try:  # POSIX; elsewhere spools are not locked (documented gap)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

SPOOL_FORMAT = 1
#: bytes of fully acknowledged journal past which it is truncated (bounded disk use).
TRUNCATE_AT = 8 * 1024 * 1024
#: marks appended between two saves of the state file (bounds the marks file and a load).
MARKS_PER_SAVE = 256
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
        self._journal_fd: int | None = None
        self.marks_path = self.folder / f"{local_id}.marks"
        self._marks_fd: int | None = None
        #: marks written since the state file was last saved.
        self.marks_since_save = 0
        #: journal size after the last op written by this process (the next op's start).
        self.journal_end = 0
        self._save_lock = threading.Lock()

    # -- the op log ---------------------------------------------------------

    def has_log(self) -> bool:
        return self.log_path.is_file()

    def journal(self, ops: Iterable[dict[str, Any]]) -> list[int]:
        """Write ``ops`` to the journal in one ``write(2)`` (to the OS, not fsync'd);
        return the journal offset after each op.  Callers serialise (the channel lock)."""
        lines = [encode(op) for op in ops]
        if not lines:
            return []
        fd = self._journal_fd
        if fd is None:
            fd = self._open_journal()
        data = b"".join(lines)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            with suppress(OSError):  # never leave half an op for the next one to glue onto
                os.ftruncate(fd, self.journal_end)
            raise
        ends = []
        end = self.journal_end
        for line in lines:
            end += len(line)
            ends.append(end)
        self.journal_end = end
        return ends

    def _open_journal(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.try_lock()
        fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        self._journal_fd = fd
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # a write cut short by a kill: never sent (ops are sent only once written
            # whole), so cut it off rather than glue the next op onto it
            with self.log_path.open("rb") as fh:
                tail = fh.read()
            size = tail.rfind(b"\n") + 1
            os.ftruncate(fd, size)
        self.journal_end = size
        return fd

    def sync(self) -> None:
        """fsync the journal (exit and finish: cheap once, costly per batch)."""
        if self._journal_fd is not None:
            os.fsync(self._journal_fd)

    def truncate(self) -> None:
        """Empty the journal: every op in it is acknowledged (the caller saves the state
        with offset 0 right after, before anything new is written)."""
        if self._journal_fd is not None:
            os.ftruncate(self._journal_fd, 0)
        elif self.has_log():
            os.truncate(self.log_path, 0)
        self.journal_end = 0

    def close_journal(self) -> None:
        for name in ("_journal_fd", "_marks_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    # -- marks: started / acknowledged ops ----------------------------------

    def mark(self, kind: str, epoch: int, ends: Iterable[int]) -> None:
        """Append marks (``"s"`` started, ``"a"`` acknowledged) for the ops ending at
        ``ends``: one ``write(2)``, no rename.  :meth:`load` folds them into the state."""
        data = "".join(f"{kind} {epoch} {end}\n" for end in ends).encode("ascii")
        if not data:
            return
        if self._marks_fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._marks_fd = os.open(self.marks_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._marks_fd, data)
        self.marks_since_save += 1

    def checkpoint(self, state: RunState, meta: dict[str, Any], durable: bool = False) -> None:
        """Save the state (which holds every mark so far) and empty the marks file."""
        self.save(state, meta, durable)
        if self._marks_fd is not None:
            os.ftruncate(self._marks_fd, 0)
        elif self.marks_path.is_file():
            os.truncate(self.marks_path, 0)

    def _fold_marks(self, state: RunState) -> None:
        """Marks of the state's epoch into ``state`` (a torn last line is ignored)."""
        try:
            raw = self.marks_path.read_bytes()
        except FileNotFoundError:
            return
        raw = raw[: raw.rfind(b"\n") + 1]  # a last line without its newline was cut by a kill
        acked, started = set(state.acked), set(state.started)
        for line in raw.split(b"\n"):
            parts = line.split()
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                continue
            if int(parts[1]) != state.epoch:
                continue
            (acked if parts[0] == b"a" else started).add(int(parts[2]))
        state.acked, state.started = sorted(acked), sorted(started)
        state.acknowledge(())

    def append(self, ops: Iterable[dict[str, Any]]) -> int:
        """Append ``ops`` durably (write + fsync); return how many were written."""
        ends = self.journal(ops)
        self.sync()
        return len(ends)

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
                    yield decode(raw), offset

    def size(self) -> int:
        return self.log_path.stat().st_size if self.has_log() else 0

    # -- state --------------------------------------------------------------

    def load(self) -> tuple[RunState, dict[str, Any]]:
        """``(run state, metadata)``; metadata names the remote and holds the create op's facts."""
        if not self.state_path.is_file():
            return RunState(), {}
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        state = RunState.from_json(data.get("state", {}))
        self._fold_marks(state)
        return state, data.get("meta", {})

    def save(self, state: RunState, meta: dict[str, Any], durable: bool = True) -> None:
        """Replace the state file atomically (fsync'd unless ``durable=False``: the
        per-batch acknowledgements only need to survive the process, not the machine)."""
        with self._save_lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            payload = {"format": SPOOL_FORMAT, "meta": meta, "state": state.to_json()}
            data = json.dumps(payload, sort_keys=True, allow_nan=True).encode("utf-8")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.state_path)
            self.marks_since_save = 0

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
        # journal first: killed in between, the old state's offset still covers it all
        self.close_journal()
        self.journal_end = 0
        with suppress(FileNotFoundError):
            self.log_path.unlink()
        with suppress(FileNotFoundError):
            self.marks_path.unlink()
        state.offset = 0
        state.acked, state.started = [], []
        meta = dict(meta, complete=True)
        self.save(state, meta)
        shutil.rmtree(self.files_dir, ignore_errors=True)
        with suppress(FileNotFoundError):
            self._lock_path.unlink()
        self.unlock()

    def discard_staging(self) -> None:
        """Remove the staging folder of a run that never needed the spool."""
        self.close_journal()
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
