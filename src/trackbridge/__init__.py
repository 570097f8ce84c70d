"""trackbridge: one logging API for any experiment tracker, and copy/sync/check between them.

Importing this package imports no vendor SDK; each backend imports its own lazily.

Quickstart::

    import trackbridge as tb

    with tb.start_run(project="demo", name="first", config={"lr": 0.1}) as run:
        for step in range(10):
            run.log_metrics({"loss": 1 / (step + 1)}, step=step)
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from trackbridge.redact import MaskingFilter
from trackbridge.version import __version__

logging.getLogger("trackbridge").addFilter(MaskingFilter())

__all__ = [
    "__version__",
    "init",
    "start_run",
    "active_run",
    "finish",
    "log_params",
    "log_metrics",
    "set_tags",
    "log_artifact",
    "log_model",
    "register_model",
    "log",
    "add_labels",
    "log_summary",
    "set_notes",
    "Run",
]

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.facade.run import Run


def __getattr__(name: str) -> Any:
    """Load the facade on first use, so ``import trackbridge`` stays cheap."""
    if name in __all__ and name != "__version__":
        from trackbridge.facade import api

        return getattr(api, name)
    raise AttributeError(f"module 'trackbridge' has no attribute {name!r}")
