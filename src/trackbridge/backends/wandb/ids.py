"""W&B run ids: chosen by the client, so a copy derives its id from its source run.

Why: the same source run copied twice (here, or after ``wandb sync`` into the cloud)
gets the same W&B id both times, so a re-copy updates the run instead of making a
second one, by construction.  The engine passes the source in the provenance tags of
``create_run``; without them (live logging) the id is random, as wandb's own.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

#: provenance tag names of the backend contract (the sync engine sets them).
SOURCE_PLATFORM = "trackbridge.source.platform"
SOURCE_RUN_ID = "trackbridge.source.run_id"

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 16


def _base36(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        number, rem = divmod(number, 36)
        out.append(_ALPHABET[rem])
    return "".join(out)


def stable_id(text: str, length: int) -> str:
    """``length`` lowercase letters/digits fixed by ``text``."""
    return _base36(hashlib.sha256(text.encode()).digest(), length)


def derived_run_id(platform: str, run_id: str) -> str:
    """A W&B-valid run id (16 lowercase letters/digits) fixed by the source run."""
    return stable_id(f"trackbridge:{platform}:{run_id}", ID_LENGTH)


def run_id_for(tags: Mapping[str, str] | None) -> str:
    """The derived id when ``tags`` name a source run, else a random one."""
    tags = tags or {}
    platform, source = tags.get(SOURCE_PLATFORM), tags.get(SOURCE_RUN_ID)
    if platform and source:
        return derived_run_id(platform, source)
    return _base36(secrets.token_bytes(16), 8)
