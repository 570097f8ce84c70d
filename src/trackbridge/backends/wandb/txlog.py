"""The ``.wandb`` transaction log: a leveldb-style record log, read and written.

Why our own: wandb 0.31 ships no Python reader any more (its Go core syncs), and the
reader must survive what crashed runs leave behind.  The format (the Go core's
``core/internal/transactionlog``, the old ``wandb/sdk/internal/datastore.py``):

* a 7-byte file header ``<4sHB>`` = (``:W&B``, ``0xBEE1``, ``0``);
* the file (header included) is cut into 32 KiB blocks; each record is one or more
  chunks ``<IHB>`` = (crc32, length, type) + data, type FULL / FIRST / MIDDLE / LAST;
  ``crc = zlib.crc32(data, zlib.crc32(bytes([type])))``;
* a block tail shorter than a chunk header is zero padding, and a chunk of type 0
  and length 0 pads to the end of its block.

Records are serialized ``wandb.proto.wandb_internal_pb2.Record`` messages; this
module only moves bytes (no wandb import), so it is as fast as the format allows.

Damage (a truncated tail, a bad CRC, a broken chunk sequence) never loses what came
before it: :func:`iter_records` yields every intact record, then raises
:class:`TxlogError` whose :attr:`TxlogError.offset` is the byte where reading stopped.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from trackbridge.errors import BackendError

MAGIC = b":W&B"
VERSION = 0xBEE1
DATA_VERSION = 0
HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
BLOCK_SIZE = 32 * 1024
HEADER_SIZE = HEADER.size  # 7
CHUNK_HEADER_SIZE = CHUNK.size  # 7

ZERO, FULL, FIRST, MIDDLE, LAST = 0, 1, 2, 3, 4
_TYPE_CRC = [zlib.crc32(bytes([t])) for t in range(256)]


class TxlogError(BackendError):
    """A ``.wandb`` file is damaged at :attr:`offset`; every record before it was read."""

    def __init__(self, path: str, offset: int, reason: str, records: int) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        self.records = records
        super().__init__(
            f"{path}: {reason} at byte offset {offset}; reading stopped there after "
            f"{records} intact record(s). The records before it were recovered; the rest of "
            "the file cannot be read (a crashed or still-running run, or a damaged copy)."
        )


def check_header(head: bytes, path: str) -> None:
    """Raise :class:`TxlogError` unless ``head`` is a ``.wandb`` file header."""
    if len(head) < HEADER_SIZE:
        raise TxlogError(path, 0, "file shorter than the 7-byte .wandb header", 0)
    magic, version, data_version = HEADER.unpack_from(head)
    if magic != MAGIC or version != VERSION or data_version != DATA_VERSION:
        raise TxlogError(
            path, 0, f"not a .wandb file (header {magic!r}, {version:#x}, {data_version}; "
            f"expected {MAGIC!r}, {VERSION:#x}, {DATA_VERSION})", 0,
        )


def iter_records(stream: BinaryIO, path: str = "<stream>", start: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(offset, data)`` of every record in ``stream``, oldest first.

    ``offset`` is where the record's first chunk starts (usable with ``start`` to
    resume reading, e.g. to re-read one history row).  ``start`` = 0 checks the
    header; a later ``start`` must be an offset this function yielded.  A clean end
    of file stops; damage raises :class:`TxlogError` after the intact records."""
    if start == 0:
        check_header(stream.read(HEADER_SIZE), path)
        pos = HEADER_SIZE
    else:
        stream.seek(start)
        pos = start
    count = 0
    pending: list[bytes] | None = None
    pending_at = 0
    block_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
    buf = stream.read(block_end - pos)
    base = pos  # file offset of buf[0]
    while True:
        i = pos - base
        if len(buf) - i < CHUNK_HEADER_SIZE:
            if len(buf) - i < block_end - pos:  # short read: end of file
                if pending is not None:
                    raise TxlogError(path, pending_at, "file ends inside a record (truncated)", count)
                if any(buf[i:]):
                    raise TxlogError(path, pos, "file ends inside a chunk header (truncated)", count)
                return
            # block tail: padding, next block
            pos = block_end
            block_end += BLOCK_SIZE
            buf = stream.read(BLOCK_SIZE)
            base = pos
            if not buf:
                if pending is not None:
                    raise TxlogError(path, pending_at, "file ends inside a record (truncated)", count)
                return
            continue
        crc, length, kind = CHUNK.unpack_from(buf, i)
        if kind == ZERO and length == 0:
            pos = block_end  # zero padding to the end of the block
            continue
        data_at = i + CHUNK_HEADER_SIZE
        if data_at + length > len(buf):
            if pos + CHUNK_HEADER_SIZE + length > block_end:
                raise TxlogError(path, pos, f"chunk of {length} bytes crosses a block boundary", count)
            raise TxlogError(path, pos, "file ends inside a chunk (truncated)", count)
        data = buf[data_at:data_at + length]
        if zlib.crc32(data, _TYPE_CRC[kind]) != crc:
            raise TxlogError(path, pos, "chunk checksum mismatch (bad CRC)", count)
        chunk_at = pos
        pos += CHUNK_HEADER_SIZE + length
        if kind == FULL:
            if pending is not None:
                raise TxlogError(path, chunk_at, "FULL chunk inside an unfinished record", count)
            count += 1
            yield chunk_at, data
        elif kind == FIRST:
            if pending is not None:
                raise TxlogError(path, chunk_at, "FIRST chunk inside an unfinished record", count)
            pending, pending_at = [data], chunk_at
        elif kind == MIDDLE or kind == LAST:
            if pending is None:
                raise TxlogError(path, chunk_at, "continuation chunk without a FIRST chunk", count)
            pending.append(data)
            if kind == LAST:
                record, at = b"".join(pending), pending_at
                pending = None
                count += 1
                yield at, record
        else:
            raise TxlogError(path, chunk_at, f"unknown chunk type {kind}", count)


def end_of(offset: int, length: int) -> int:
    """Where a record of ``length`` bytes written at ``offset`` ends (its chunk headers
    and block-tail padding counted), i.e. where the next record may start."""
    pos, left = offset, length
    while True:
        room = BLOCK_SIZE - pos % BLOCK_SIZE
        if room < CHUNK_HEADER_SIZE:
            pos += room
            continue
        take = min(left, room - CHUNK_HEADER_SIZE)
        pos += CHUNK_HEADER_SIZE + take
        left -= take
        if left == 0:
            return pos


def read_file(path: Path) -> Iterator[tuple[int, bytes]]:
    """:func:`iter_records` of the file at ``path`` (opened and closed here)."""
    with open(path, "rb") as stream:
        yield from iter_records(stream, str(path))


def read_at(path: Path, offsets: Iterable[int], window: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """``(offset, data)`` of the records starting at ``offsets`` (ascending offsets that
    :func:`iter_records` yielded, e.g. a scan's history rows), the others not looked at.

    Why: re-reading one kind of record (history is a third of a W&B log) costs only
    those records' chunks, read through a ``window``-byte buffer.  Single-chunk records
    are checked here (CRC); any other (multi-chunk, damaged) goes through
    :func:`iter_records`, so damage raises :class:`TxlogError` as it does there."""
    with open(path, "rb") as stream:
        buf, base = b"", 0  # buf holds the file's bytes from offset ``base``
        for offset in offsets:
            at = offset - base
            if at < 0 or at + CHUNK_HEADER_SIZE > len(buf):
                stream.seek(offset)
                buf, base, at = stream.read(window), offset, 0
            if at + CHUNK_HEADER_SIZE <= len(buf):
                crc, length, kind = CHUNK.unpack_from(buf, at)
                end = at + CHUNK_HEADER_SIZE + length
                if end > len(buf) and kind == FULL:
                    stream.seek(offset)
                    buf, base, at = stream.read(max(window, end - at)), offset, 0
                    end = CHUNK_HEADER_SIZE + length
                data = buf[at + CHUNK_HEADER_SIZE:end]
                if kind == FULL and len(data) == length and zlib.crc32(data, _TYPE_CRC[FULL]) == crc:
                    yield offset, data
                    continue
            for found in iter_records(stream, str(path), start=offset):
                yield found
                break
            else:
                raise TxlogError(str(path), offset, "file ends before a record it held (changed?)", 0)
            buf = b""  # the stream moved: refill at the next offset


class LogWriter:
    """Appends records to a ``.wandb`` file in the format :func:`iter_records` reads
    (and the Go core's reader and ``wandb sync`` accept)."""

    def __init__(self, stream: BinaryIO, offset: int | None = None) -> None:
        """A new log (header written) or, with ``offset``, an existing one continued at
        ``offset`` (the stream must be positioned there; an offset where a record started)."""
        self._stream = stream
        if offset is None:
            stream.write(HEADER.pack(MAGIC, VERSION, DATA_VERSION))
            offset = HEADER_SIZE
        self._pos = offset
        self.records = 0

    @property
    def offset(self) -> int:
        """Bytes written so far (where the next record starts)."""
        return self._pos

    def write(self, data: bytes) -> int:
        """Append one record; return the offset of its first chunk."""
        out = self._stream
        left = BLOCK_SIZE - self._pos % BLOCK_SIZE
        if left < CHUNK_HEADER_SIZE:
            out.write(b"\x00" * left)
            self._pos += left
            left = BLOCK_SIZE
        start = self._pos
        view = memoryview(data)
        first = True
        while True:
            room = left - CHUNK_HEADER_SIZE
            piece = view[:room]
            view = view[room:]
            last = len(view) == 0
            kind = FULL if first and last else FIRST if first else LAST if last else MIDDLE
            piece_bytes = bytes(piece)
            out.write(CHUNK.pack(zlib.crc32(piece_bytes, _TYPE_CRC[kind]), len(piece_bytes), kind))
            out.write(piece_bytes)
            self._pos += CHUNK_HEADER_SIZE + len(piece_bytes)
            if last:
                break
            first = False
            left = BLOCK_SIZE - self._pos % BLOCK_SIZE
            if left < CHUNK_HEADER_SIZE:  # cannot happen after a full chunk, kept for safety
                out.write(b"\x00" * left)
                self._pos += left
                left = BLOCK_SIZE
        self.records += 1
        return start

    def flush(self) -> None:
        self._stream.flush()
