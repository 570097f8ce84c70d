"""``import trackbridge`` (and the integrations package, and a whole run) imports no
training framework: each comes in only with its own integration module."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

FRAMEWORKS = ("optuna", "keras", "torch", "lightning", "transformers", "jax", "tensorflow", "accelerate")

SCRIPT = textwrap.dedent(
    f"""
    import sys
    import trackbridge as tb
    import trackbridge.integrations
    with tb.start_run(project="lazy", backend="dir:./archive") as run:
        run.log_metrics({{"loss": 1.0}}, step=0)
    loaded = [name for name in {FRAMEWORKS!r} if name in sys.modules]
    print("loaded:", ",".join(loaded))
    import trackbridge.integrations.optuna
    print("with optuna:", "optuna" in sys.modules, "torch" in sys.modules)
    """
)


def test_no_framework_is_imported_until_its_integration_is(isolated_env: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=isolated_env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "loaded: \n" in out.stdout, out.stdout
    assert "with optuna: True False" in out.stdout, out.stdout
