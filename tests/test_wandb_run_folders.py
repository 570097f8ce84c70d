"""The W&B offline writer's folder look-up: no listing per run, and other processes' folders still seen."""
from __future__ import annotations

from pathlib import Path

from trackbridge.backends.wandb.run_folders import RunFolders


def test_own_folders_need_no_listing_and_others_are_seen(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    (tmp_path / "offline-run-20240101_000000-aaa").mkdir()
    (tmp_path / "latest-run").symlink_to(tmp_path / "offline-run-20240101_000000-aaa")
    folders = RunFolders(tmp_path)
    listings = []
    real = RunFolders._list
    monkeypatch.setattr(RunFolders, "_list", lambda self: listings.append(1) or real(self))
    assert folders.of("aaa") == [tmp_path / "offline-run-20240101_000000-aaa"]
    assert folders.of("run") == []  # the symlink is no run folder
    for i in range(5):  # this writer's own folders: no listing
        before = folders.stamp()
        made = tmp_path / f"offline-run-20240101_00000{i}-own{i}"
        made.mkdir()
        folders.made(made, f"own{i}", before)
        assert folders.of(f"own{i}") == [made]
    assert len(listings) == 1
    other = tmp_path / "run-20240101_000009-bbb"  # another process's folder
    other.mkdir()
    assert folders.of("bbb") == [other]
    assert len(listings) == 2
