"""Reading the members of one Comet offline archive, whole or damaged.

Why not only :mod:`zipfile`: a zip's table of contents is at its *end*, so an
archive cut short (a full disk, a killed upload, a partial download) has none and
``zipfile`` refuses it entirely.  Its members are still there, one after the
other, each behind a local header: :func:`salvage_members` walks those headers
and inflates what is present, so the reader can recover everything written before
the damage and say where the damage starts.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_LOCAL = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


@dataclass
class Salvaged:
    """Members recovered from an archive without a readable table of contents."""

    #: member name -> bytes (possibly cut short, see ``truncated``).
    members: dict[str, bytes]
    #: names of members whose data stops early.
    truncated: set[str]
    #: byte offset where reading stopped, for the error message.
    stopped_at: int


def salvage_members(path: Path) -> Salvaged:
    """Every member reachable through its local header, in order, until the data ends."""
    data = path.read_bytes()
    members: dict[str, bytes] = {}
    truncated: set[str] = set()
    pos = 0
    while data.startswith(_LOCAL, pos) and pos + _LOCAL_HEADER.size <= len(data):
        (_sig, _ver, flags, method, _t, _d, _crc, csize, _usize, nlen, xlen) = _LOCAL_HEADER.unpack_from(data, pos)
        name_start = pos + _LOCAL_HEADER.size
        name = data[name_start:name_start + nlen].decode("utf-8", "replace")
        body = name_start + nlen + xlen
        if body > len(data):
            break
        if flags & 0x08 and csize == 0:  # sizes in a trailing descriptor: inflate to the stream's end
            csize = len(data) - body
        chunk = data[body:body + csize]
        cut = len(chunk) < csize
        if method == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-15)
            try:
                content = inflater.decompress(chunk)
            except zlib.error:
                content, cut = b"", True
            if not inflater.eof:
                cut = True
            elif flags & 0x08:
                csize = len(chunk) - len(inflater.unused_data)
        elif method == zipfile.ZIP_STORED:
            content = chunk
        else:  # another compression: not readable here, stop rather than guess
            break
        members[name] = content
        if cut:
            truncated.add(name)
            pos = len(data)
            break
        pos = body + csize
        if flags & 0x08:  # skip the data descriptor (optional signature + crc + sizes)
            pos += 16 if data.startswith(b"PK\x07\x08", pos) else 12
    return Salvaged(members, truncated, pos)


class ArchiveFiles:
    """The members of one archive: through :mod:`zipfile` when the archive is whole,
    from :func:`salvage_members` when it is damaged (``damage`` says how)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.damage: str | None = None
        self._zip: zipfile.ZipFile | None = None
        self._salvaged: Salvaged | None = None
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            if not path.is_file():
                raise
            self._salvaged = salvage_members(path)
            self.damage = f"not a complete zip ({exc}); readable up to byte {self._salvaged.stopped_at}"

    def names(self) -> list[str]:
        if self._zip is not None:
            return self._zip.namelist()
        assert self._salvaged is not None
        return list(self._salvaged.members)

    def is_truncated(self, name: str) -> bool:
        return self._salvaged is not None and name in self._salvaged.truncated

    def size(self, name: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(name).file_size
        assert self._salvaged is not None
        return len(self._salvaged.members[name])

    def open(self, name: str) -> IO[bytes]:
        """A binary stream of one member (``KeyError`` if absent)."""
        if self._zip is not None:
            return self._zip.open(name)
        assert self._salvaged is not None
        return io.BytesIO(self._salvaged.members[name])

    def read(self, name: str) -> bytes:
        with self.open(name) as fh:
            return fh.read()

    def lines(self, name: str) -> Iterator[bytes]:
        with self.open(name) as fh:
            yield from fh

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
