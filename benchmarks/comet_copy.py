"""W&B offline -> Comet offline of one long run, through ``trackbridge copy`` (the CLI,
in a child process): wall time, peak RSS (target < 300 MB for 1,000,000 points), and
``trackbridge check`` afterwards.

    .venv/bin/python benchmarks/comet_copy.py            # 1,000,000 points (5 keys x 200,000 steps)
    .venv/bin/python benchmarks/comet_copy.py --small    # smoke: 50,000 points
    .venv/bin/python benchmarks/comet_copy.py --steps 400000 --keys 5 [--out FILE]

The source run is written (untimed) with trackbridge's W&B offline writer, rows of
``keys`` values per step with their own timestamps.  The copy is measured with
``benchmarks/_measure.py`` (wall time from spawn to exit, peak RSS of the process tree
sampled every 0.1 s, and the kernel's high-water mark).  Then ``check`` must pass and
the archive must hold every point (read back with trackbridge's Comet reader).
Prints a table; writes ``benchmarks/results/comet_copy-<date>.json`` (or ``--out``);
``--small`` writes nothing unless ``--out`` is given.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from _measure import run as measure  # noqa: E402
from _results import save  # noqa: E402

PEAK_TARGET_MB = 300
T0 = 1_700_000_000_000


def _write_source(folder: Path, steps: int, keys: int) -> str:
    from trackbridge.backends.wandb.backend import WandbOfflineBackend
    from trackbridge.history import Row
    from trackbridge.model import RunStatus

    writer = WandbOfflineBackend({"path": str(folder)}).writer()
    run_id = writer.create_run(writer.ensure_experiment("bench"), name="long", start_time=T0)
    names = [f"m{k}" for k in range(keys)]
    for start in range(0, steps, 10_000):
        writer.log_rows(run_id, [Row(s, T0 + 10 * s, {n: s * 0.001 + i for i, n in enumerate(names)})
                                 for s in range(start, min(steps, start + 10_000))])
    writer.finish_run(run_id, RunStatus.FINISHED, T0 + 10 * steps)
    writer.close()
    return run_id


def _points_in(folder: Path) -> int:
    from trackbridge.backends.comet.offline_reader import CometOfflineReader

    reader = CometOfflineReader(folder)
    [run] = list(reader.list_runs("bench"))
    keys = [k for k in run.metrics if k.startswith("m")]
    return sum(len(r.values) for r in reader.iter_rows(run.run_id, keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="smoke size: 10,000 steps x 5 keys")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    steps = 10_000 if args.small else args.steps
    points = steps * args.keys
    tb = str(Path(sys.executable).with_name("trackbridge"))
    with tempfile.TemporaryDirectory(prefix="comet-copy-bench-") as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        _write_source(base / "wandb", steps, args.keys)
        build_s = time.perf_counter() - t
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMET_", "WANDB_API"))}
        env.update({"HOME": str(base / "home"), "TRACKBRIDGE_HOME": str(base / "tbhome"), "WANDB_SILENT": "true",
                    "WANDB_MODE": "offline", "COMET_ERROR_TRACKING_ENABLE": "false", "DO_NOT_TRACK": "1"})
        src, dst = f"wandb-offline:{base / 'wandb'}", f"comet-offline:{base / 'comet'}"
        copy = measure([tb, "copy", src, dst, "--json"], env=env, cwd=base, log=base / "logs" / "copy.log")
        if copy["rc"] != 0:
            raise SystemExit(f"copy failed:\n{copy['stderr_tail']}")
        check = measure([tb, "check", src, dst], env=env, cwd=base, log=base / "logs" / "check.log")
        copied = _points_in(base / "comet")
    inner = json.loads(copy["stdout"]).get("elapsed_s")
    result = {
        "points": points, "steps": steps, "keys": args.keys, "small": args.small, "source_build_s": round(build_s, 2),
        "copy_wall_s": copy["wall_s"], "copy_inner_s": inner, "copy_points_per_s": round(points / copy["wall_s"]),
        "copy_tree_peak_mb": copy["tree_peak_mb"], "copy_hiwater_mb": copy["hiwater_mb"],
        "peak_target_mb": PEAK_TARGET_MB, "check_rc": check["rc"], "check_wall_s": check["wall_s"],
        "points_in_archive": copied,
    }
    print(f"{'step':<10}{'wall s':>9}{'peak MB':>10}{'hiwater MB':>12}")
    print(f"{'copy':<10}{copy['wall_s']:>9.2f}{copy['tree_peak_mb']:>10.1f}{copy['hiwater_mb']:>12.1f}")
    print(f"{'check':<10}{check['wall_s']:>9.2f}{check['tree_peak_mb']:>10.1f}{check['hiwater_mb']:>12.1f}")
    peak = max(copy["tree_peak_mb"], copy["hiwater_mb"])
    print(f"{points:,} points W&B offline -> Comet offline: {points / copy['wall_s']:,.0f} points/s wall; "
          f"peak {peak:.0f} MB (target < {PEAK_TARGET_MB}: {'PASS' if peak < PEAK_TARGET_MB else 'FAIL'}); "
          f"check {'PASS' if check['rc'] == 0 else 'FAIL'}; {copied:,} points in the archive "
          f"({'all' if copied == points else 'MISSING SOME'})")
    if args.small and args.out is None:
        return
    save("comet_copy", result, out=args.out)


if __name__ == "__main__":
    main()
