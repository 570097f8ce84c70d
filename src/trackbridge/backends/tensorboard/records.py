"""The TFRecord framing of event files, read without TensorFlow.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32
masked_crc32c(data)``, little-endian.  The length's checksum is verified on every record:
a file that is not an event file, or is damaged, stops with an error naming the byte
offset instead of yielding garbage lengths.  The data's checksum is not: in pure Python
it costs more than decoding the event (tensorboard's own loader without TensorFlow pays
exactly that), and a damaged event still fails to decode.  A record cut short at the end
of a file is a writer still writing: reading stops before it, and the next read sees it.
"""
from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trackbridge.errors import BackendError

_HEADER = struct.Struct("<QI")
_LENGTH = struct.Struct("<Q")


class DamagedEventFileError(BackendError):
    """An event file whose framing is broken before its end."""


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits plus a constant."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@contextmanager
def mapped(path: Path) -> Iterator[mmap.mmap | bytes]:
    """The file's bytes, memory-mapped (an empty file: no bytes; mmap refuses those)."""
    with path.open("rb") as handle:
        if handle.seek(0, 2) == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view


def iter_records(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(offset, data)`` of every whole record of ``path`` from byte ``start``, in order."""
    with mapped(path) as view:
        yield from walk(view, path, start)


def record_at(view: mmap.mmap | bytes, offset: int) -> bytes:
    """The data of the record at ``offset`` (one :func:`walk` found, so already verified)."""
    (length,) = _LENGTH.unpack_from(view, offset)
    return view[offset + 12:offset + 12 + length]


def walk(view: mmap.mmap | bytes, path: Path, pos: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(offset, data)`` of every whole record of ``view`` (the bytes of ``path``) from ``pos``."""
    size = len(view)
    known: set[bytes] = set()  # headers already verified (lengths repeat: scalars are alike)
    unpack = _HEADER.unpack_from
    while pos + 12 <= size:
        length, crc = unpack(view, pos)
        header = view[pos:pos + 12]
        if header not in known:
            if masked_crc32c(header[:8]) != crc:
                raise DamagedEventFileError(
                    f"{path}: not a TensorBoard event file, or damaged at byte {pos} (the record length's "
                    "checksum does not match). Every event before that byte was read.")
            known.add(header)
        end = pos + 12 + length + 4
        if end > size:
            return  # cut short at the end: a writer still writing
        yield pos, view[pos + 12:pos + 12 + length]
        pos = end
