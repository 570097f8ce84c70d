"""``comet upload`` without silent loss: its sampling size, the command to print, warnings.

Why: ``comet upload`` (comet_ml's ``OfflineSender``) keeps at most
``comet.offline_sampling_size`` points per metric name, 15,000 by default (env
``COMET_OFFLINE_SAMPLING_SIZE``): a reservoir sample plus the first, last, min and
max points.  A longer series loses points at upload with no error.  Every point is
kept when the setting is at least the length of the longest series, so the command
trackbridge prints sets it; ``plan`` warns about every series above the default.
"""
from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

#: ``comet.offline_sampling_size``'s default in comet_ml (config_map.py).
DEFAULT_SAMPLING_SIZE = 15_000
SAMPLING_ENV = "COMET_OFFLINE_SAMPLING_SIZE"


def sampling_size_for(max_points: int) -> int:
    """The smallest setting that uploads every point of a series of ``max_points``
    (never below Comet's default, so shorter runs upload as they always did)."""
    return max(DEFAULT_SAMPLING_SIZE, int(max_points))


def upload_command(path: str | Path, max_points: int) -> str:
    """The exact shell line that uploads ``path`` (an archive or a folder of them)
    with no point sampled away, e.g.
    ``COMET_OFFLINE_SAMPLING_SIZE=20000 comet upload ./comet/*.zip``."""
    p = Path(path)
    target = shlex.quote(str(p)) if p.suffix == ".zip" else f"{shlex.quote(str(p))}/*.zip"
    return f"{SAMPLING_ENV}={sampling_size_for(max_points)} comet upload {target}"


def long_series(counts: Mapping[str, int], sampling_size: int = DEFAULT_SAMPLING_SIZE) -> dict[str, int]:
    """The series longer than ``sampling_size`` (key -> points), longest first."""
    over = {k: n for k, n in counts.items() if n > sampling_size}
    return dict(sorted(over.items(), key=lambda kv: (-kv[1], kv[0])))


def sampling_warnings(counts: Mapping[str, int], run: str = "",
                      sampling_size: int = DEFAULT_SAMPLING_SIZE) -> list[str]:
    """One warning per series ``comet upload`` would downsample with ``sampling_size``."""
    where = f"run {run}: " if run else ""
    return [
        f"{where}metric {key!r} has {n:,} points; `comet upload` keeps {sampling_size:,} per metric "
        f"unless {SAMPLING_ENV} is set to at least {n} (trackbridge's upload command sets it)"
        for key, n in long_series(counts, sampling_size).items()
    ]


def archive_series_counts(path: str | Path) -> dict[str, dict[str, int]]:
    """Run id -> {metric name -> points} of the archives at ``path`` (one scan each)."""
    from trackbridge.backends.comet.offline_reader import archive_paths
    from trackbridge.backends.comet.scan import scan
    from trackbridge.backends.comet.zipsource import ArchiveFiles

    out: dict[str, dict[str, int]] = {}
    for archive in archive_paths(Path(path)):
        files = ArchiveFiles(archive)
        try:
            run = scan(archive, files)
        finally:
            files.close()
        # what the uploader samples is per Comet metric name, epoch series derived or not
        counts = {k: n for k, n in run.counts.items() if not (run.derived_epoch and k == "epoch")}
        out[run.key] = counts
    return out


def archive_upload_command(path: str | Path) -> tuple[str, list[str]]:
    """The upload command for the archives at ``path`` and the warnings for them."""
    per_run = archive_series_counts(path)
    longest = max((n for counts in per_run.values() for n in counts.values()), default=0)
    warnings = [w for run, counts in per_run.items() for w in sampling_warnings(counts, run)]
    return upload_command(path, longest), warnings
