"""``check`` is the proof: every field of the rich sample, damaged by hand in the files of
a real destination (a ``dir:`` archive, whose files are plain JSON and bytes), makes
``check`` fail and name that field.  One case per field, each on a fresh copy."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sample import write_rich_sample

from trackbridge import media_layout
from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.sync.check import Checker
from trackbridge.sync.engine import Options, SyncEngine, target_of
from trackbridge.sync.plan import Selection


def _run_json(dst: Path) -> Path:
    (path,) = dst.glob("experiments/*/runs/*/run.json")
    return path


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _run(dst: Path, change: Callable[[dict], None]) -> None:
    _edit_json(_run_json(dst), change)


def _media_file(dst: Path, key: str, name: str) -> Path:
    (path,) = _run_json(dst).parent.glob(f"artifacts/**/{media_layout.MEDIA_DIR.split('/')[-1]}/{key}/{name}")
    return path


def _index(dst: Path, key: str, change: Callable[[list[dict]], None]) -> None:
    path = _media_file(dst, key, media_layout.INDEX)
    points = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    change(points)
    path.write_text("".join(json.dumps(p) + "\n" for p in points), encoding="utf-8")


def _version(dst: Path, change: Callable[[dict], None]) -> None:
    path = sorted(dst.glob("registry/*/versions/*.json"))[0]
    _edit_json(path, change)


def _image_bytes(dst: Path) -> None:
    (path,) = _run_json(dst).parent.glob("artifacts/**/val/examples/files/1-*")
    path.write_bytes(path.read_bytes() + b"!")


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "model tag": (lambda d: _run(d, lambda r: r["models"][1]["tags"].update(fit="edited")), "tags"),
    "model param": (lambda d: _run(d, lambda r: r["models"][0]["params"].update(C="9")), "params"),
    "model metric": (lambda d: _run(d, lambda r: r["models"][0]["metrics"].update(score=1.5)), "metrics"),
    "model type": (lambda d: _run(d, lambda r: r["models"][0].update(model_type="regressor")), "type"),
    "model status": (lambda d: _run(d, lambda r: r["models"][0].update(status="FAILED")), "status"),
    "a second model of one name": (lambda d: _run(d, lambda r: r["models"].pop()), "missing"),
    "artifact metadata": (lambda d: _run(d, lambda r: r["artifact_meta"]["dataset"].update(type="model")),
                          "artifact metadata"),
    "histogram values": (lambda d: _index(d, "weights", lambda p: p[2]["data"]["values"].reverse()),
                         "media 'weights' point 2 (step 2): data differ"),
    "image caption": (lambda d: _index(d, "val/examples", lambda p: p[1].update(caption="other")),
                      "media 'val/examples' point 1 (step 1): caption differ"),
    "media point count": (lambda d: _index(d, "weights", lambda p: p.pop()), "3 points at source, 2 at destination"),
    "image bytes": (_image_bytes, "file content differ"),
    "version stage": (lambda d: _version(d, lambda v: v.update(stage="Staging")), "stage"),
}


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("damage")
    src = ArchiveBackend({"path": str(tmp / "src")})
    writer = src.writer()
    sample = write_rich_sample(writer, tmp / "files", src.features)
    writer.close()
    return tmp / "src", tmp / "dst", sample.experiment


@pytest.mark.parametrize("what", list(DAMAGE))
def test_check_fails_and_names_each_damaged_field(copied: tuple[Path, Path, str], tmp_path: Path, what: str) -> None:
    src_path, _dst, experiment = copied
    src, dst = ArchiveBackend({"path": str(src_path)}), ArchiveBackend({"path": str(tmp_path / "dst")})
    selection = Selection(experiments=[experiment])
    assert SyncEngine(src, dst, Options(mode="copy")).run(selection).ok
    target = target_of(src, dst, dst.writer().limits)
    assert Checker(src.reader(), dst.reader(), target).check(selection).ok  # undamaged: equal

    damage, named = DAMAGE[what]
    damage(tmp_path / "dst")
    report = Checker(src.reader(), ArchiveBackend({"path": str(tmp_path / "dst")}).reader(), target).check(selection)
    details = [d for f in report.findings for d in f.details]
    assert not report.ok, what
    assert any(named in d for d in details), (what, details)
