"""MLflow autologging inside a trackbridge run.

``mlflow.sklearn.autolog()`` (and every other flavour's autolog) logs into MLflow's
*fluent* active run, and starts a run of its own when there is none.  The facade talks to
MLflow through its own ``MlflowClient`` and never touches the fluent state, so without this
module a fit inside ``tb.start_run()`` made a second run (``Default/<random name>``) and the
trackbridge run got only the values logged by hand, with no warning.

What this does, called by :func:`trackbridge.start_run` when autologging is enabled (some
flavour's autolog was called, and not with ``disable=True``):

* when the run logs to MLflow, it waits (at most :data:`BIND_TIMEOUT`) until the facade
  has created the MLflow run, points MLflow's fluent tracking URI at the same store, and
  makes that run MLflow's active run in this thread (``mlflow.start_run(run_id=...)``, the
  public way to resume a run), so autolog's params, metrics, models and datasets land in
  the trackbridge run.  When the run finishes, the fluent run is ended before the facade's
  own finish is queued (which then sets the final status and end time), and the fluent
  tracking URI is set back;
* when the run does not log to MLflow (W&B, Comet, ``dir:``), or MLflow is one of several
  backends, it warns: autolog writes only to MLflow, never through the facade, so its values
  are in MLflow alone (in a run of their own when MLflow is not a backend of the run).

Limits, each warned about: autolog enabled only after ``start_run`` is not bound (enable it
first); MLflow's active run is per thread, so a fit in another thread than the one that
called ``start_run`` makes its own run; an MLflow server too slow to create the run within
:data:`BIND_TIMEOUT` leaves autolog on its own run.

Nothing here imports MLflow unless MLflow's autologging module is already loaded.
"""
from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from trackbridge.facade.run import Run

log = logging.getLogger("trackbridge")

#: seconds ``start_run`` waits for the MLflow run to exist before binding autolog to it.
BIND_TIMEOUT = 10.0
_AUTOLOG_MODULE = "mlflow.utils.autologging_utils"


def autolog_enabled() -> list[str]:
    """The autolog flavours enabled in this process (none if MLflow's autologging was never loaded)."""
    module = sys.modules.get(_AUTOLOG_MODULE)
    if module is None:
        return []
    integrations: dict[str, dict[str, Any]] = getattr(module, "AUTOLOGGING_INTEGRATIONS", {})
    return sorted(name for name, conf in integrations.items() if conf and not conf.get("disable", False))


def attach(run: "Run") -> None:
    """Bind MLflow autologging to ``run`` if it is enabled (see the module docstring)."""
    flavours = autolog_enabled()
    if not flavours:
        run.before_finish.append(_late_warning)
        return
    mlflow_uris = run.mlflow_tracking_uris()
    others = [remote for remote in run.remote_ids if remote not in mlflow_uris]
    if not mlflow_uris:
        import mlflow

        log.warning(
            "trackbridge: MLflow autolog (%s) is on but run %s logs to %s, not MLflow: autolog writes only to "
            "MLflow, so what it logs goes to a separate MLflow run at %s. Log those values with run.log_*, "
            "or add mlflow to the run's backends (TRACKBRIDGE_BACKEND=mlflow,...).",
            ", ".join(flavours), run.name or run.id, ", ".join(others), mlflow.get_tracking_uri(),
        )
        return
    if others:
        log.warning("trackbridge: MLflow autolog (%s) logs into run %s at MLflow only, not at %s.",
                    ", ".join(flavours), run.name or run.id, ", ".join(others))
    remote, uri = next(iter(mlflow_uris.items()))
    _Binding(run, remote, uri).bind()


class _Binding:
    """MLflow's fluent active run made the trackbridge run's MLflow run, for the run's lifetime."""

    def __init__(self, run: "Run", remote: str, uri: str) -> None:
        self.run = run
        self.remote = remote
        self.uri = uri
        self.thread = threading.get_ident()
        self.run_id: str | None = None
        self.previous_uri: str | None = None

    def bind(self) -> None:
        import mlflow
        from mlflow.exceptions import MlflowException

        self.run.flush(BIND_TIMEOUT)
        run_id = self.run.remote_ids.get(self.remote)
        if run_id is None:
            log.warning("trackbridge: %s did not create run %s within %.0f s: MLflow autolog logs to a run of its "
                        "own this time.", self.remote, self.run.name or self.run.id, BIND_TIMEOUT)
            return
        previous = mlflow.get_tracking_uri()
        if previous != self.uri:
            mlflow.set_tracking_uri(self.uri)
        try:
            mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None)
        except MlflowException as exc:  # e.g. mlflow.set_experiment named another experiment
            if previous != self.uri:
                mlflow.set_tracking_uri(previous)
            log.warning("trackbridge: cannot make run %s MLflow's active run (%s): MLflow autolog logs to a run "
                        "of its own.", self.run.name or self.run.id, exc)
            return
        self.run_id, self.previous_uri = run_id, previous
        self.run.before_finish.append(self.unbind)

    def unbind(self, run: "Run") -> None:
        """End MLflow's fluent run (the facade's finish, queued next, sets status and end time)."""
        import mlflow

        if threading.get_ident() != self.thread:
            log.warning("trackbridge: run %s finished in another thread than it started: MLflow's active run of "
                        "that thread is left to MLflow.", run.name or run.id)
            return
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self.run_id:
            mlflow.end_run(str(run.status.value))
        if self.previous_uri is not None and self.previous_uri != self.uri:
            mlflow.set_tracking_uri(self.previous_uri)


def _late_warning(run: "Run") -> None:
    """Autolog enabled while the run was open was not bound: say where its values went."""
    flavours = autolog_enabled()
    if flavours:
        log.warning("trackbridge: MLflow autolog (%s) was enabled after run %s started, so what it logged during "
                    "the run went to an MLflow run of its own; enable autolog before trackbridge.start_run() to "
                    "log into the trackbridge run.",
                    ", ".join(flavours), run.name or run.id)
