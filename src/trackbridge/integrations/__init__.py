"""Training frameworks' callback hooks, each logging through the facade.

One module per framework (``optuna``, ``lightning``, ``huggingface``, ``keras``); MLflow
autologging inside a trackbridge run is the facade's own (:mod:`trackbridge.facade.mlflow_autolog`,
since ``start_run`` binds it).  Why through the facade
and not a tracker's SDK: the integration then gets every backend, fan-out, ``.env``, the
journal and ``trackbridge replay`` for free, and the tracker is switched by
``TRACKBRIDGE_BACKEND`` without touching the training code.

Nothing here is imported by ``import trackbridge``, and each module imports its framework
only when it is imported itself: ``from trackbridge.integrations.keras import
TrackbridgeCallback`` is what pulls Keras in.
"""
