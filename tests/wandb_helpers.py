"""Runs produced by the real wandb SDK in offline mode, for the W&B backend tests.

Each run is made in a child process (fresh wandb globals, the suite's quiet env, its
own WANDB_DIR/WANDB_DATA_DIR) which also writes ``expected.json``: exactly what the
script logged, so the tests compare our reader with the SDK's input, not with itself.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROWS = 1500

SDK_SCRIPT = textwrap.dedent(
    """
    import json, math, os, sys, pathlib
    import wandb

    out = pathlib.Path(sys.argv[1])
    rows = int(sys.argv[2])
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "model" / "weights.bin").write_bytes(b"\\x00\\x01" * 500)
    (out / "model" / "config.json").write_text('{"layers": 2}')
    (out / "data").mkdir(exist_ok=True)
    (out / "data" / "train.csv").write_text("a,b\\n1,2\\n")
    (out / "data" / "sub").mkdir(exist_ok=True)
    (out / "data" / "sub" / "test.csv").write_text("a,b\\n3,4\\n")

    config = {"lr": 0.01, "batch": 32, "model": {"layers": [64, 32], "act": "relu",
              "opt": {"name": "adam", "eps": 1e-08}}}
    run = wandb.init(project="proj-a", name="sdk-run", config=config, tags=["base", "x"],
                     notes="first notes", group="grp-1", job_type="train", dir=str(out))
    expected = {"run_id": run.id, "config": config, "loss": [], "acc": [], "val": []}
    for i in range(rows):
        loss = float("nan") if i == 7 else (float("inf") if i == 8 else 1.0 / (i + 1))
        row = {"loss": loss, "acc": i / rows}
        if i % 100 == 0:
            row["val/loss"] = 2.0 / (i + 1)
            expected["val"].append([i, row["val/loss"]])
        run.log(row)
        expected["loss"].append([i, "nan" if math.isnan(loss) else loss])
        expected["acc"].append([i, i / rows])
    # repeated and out-of-order user steps: W&B keeps one row per step, drops lower steps
    run.log({"late": 1.0}, step=rows + 10)
    run.log({"late2": 2.0}, step=rows + 10)     # same step: merged into the same row
    run.log({"late": 3.0}, step=rows + 5)       # lower step: the SDK drops it (warning)
    run.log({"late": 4.0}, step=rows + 20)
    expected["late"] = [[rows + 10, 1.0], [rows + 20, 4.0]]
    expected["late2"] = [[rows + 10, 2.0]]
    run.summary["best_acc"] = 0.5
    run.summary["best_acc"] = 0.9
    run.summary.update({"final": {"a": 1, "b": "text"}})
    run.tags = run.tags + ("late-tag",)
    run.notes = "edited notes"
    art = wandb.Artifact("dataset-a", type="dataset", metadata={"rows": 2})
    art.add_dir(str(out / "data"))
    run.log_artifact(art)
    run.log_model(str(out / "model"), name="my-model")
    expected["summary"] = {"best_acc": 0.9, "final": {"a": 1, "b": "text"}}
    expected["tags"] = ["base", "x", "late-tag"]
    expected["notes"] = "edited notes"
    run.finish()
    (out / "expected.json").write_text(json.dumps(expected))
    """
)


def sdk_env(root: Path) -> dict[str, str]:
    """The suite's quiet offline env, with every wandb dir under ``root``."""
    env = dict(os.environ)
    env.update({
        "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_CODE": "true",
        "WANDB_DIR": str(root), "WANDB_DATA_DIR": str(root / "data-dir"),
        "WANDB_CACHE_DIR": str(root / "cache-dir"), "WANDB_CONFIG_DIR": str(root / "config-dir"),
        "HOME": str(root),
    })
    return env


def make_sdk_run(root: Path, rows: int = ROWS) -> tuple[Path, dict[str, Any]]:
    """Run :data:`SDK_SCRIPT`; return the run dir (``offline-run-*``) and ``expected``."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "make_run.py"
    script.write_text(SDK_SCRIPT)
    subprocess.run([sys.executable, str(script), str(root), str(rows)], env=sdk_env(root),
                   check=True, timeout=300, cwd=root)
    expected = json.loads((root / "expected.json").read_text())
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    return run_dir, expected


def wandb_file(run_dir: Path) -> Path:
    (path,) = run_dir.glob("run-*.wandb")
    return path


@pytest.fixture(scope="session")
def sdk_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One rich run made by the real SDK, shared by the session (read-only: copy it
    before damaging it)."""
    return make_sdk_run(tmp_path_factory.mktemp("wandb-sdk-run"))
