"""The end of ``make demo``: where the copies are and what a user with an account runs next.

    python examples/demo_next_steps.py dir:./demo-archive wandb-offline:./demo-wandb comet-offline:./demo-comet

Each remote's backend says what comes after a copy into it (``Backend.next_steps``):
the vendor's own uploader, with the settings it needs to send every point.
"""
from __future__ import annotations

import sys
from pathlib import Path

from trackbridge.config import load_config
from trackbridge.remotes import parse_remote


def _size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def main(remotes: list[str]) -> None:
    config = load_config()
    print("\nThe quickstart runs, copied and checked, are here:")
    steps: list[str] = []
    for arg in remotes:
        backend = parse_remote(arg, config).open()
        path = Path(str(backend.options.get("path", "."))).resolve()
        count, size = _size(path)
        print(f"  {backend.name:<14} {path}  ({count} files, {size / 1e6:.1f} MB)")
        steps.extend(backend.next_steps())
    if steps:
        print("\nWith an account, upload them with the vendors' own tools:")
        for step in steps:
            print(f"  {step}")


if __name__ == "__main__":
    main(sys.argv[1:])
