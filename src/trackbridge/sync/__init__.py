"""The sync engine: plan, transfer and verify run history between two remotes.

It knows platforms only through :mod:`trackbridge.backends.base` (Reader and
Writer); it never imports a vendor SDK.  One module per job:

* :mod:`~trackbridge.sync.provenance` — destination tags (source, origin,
  completion marker) and the source fingerprint; the destination is the truth.
* :mod:`~trackbridge.sync.ledger` — sqlite cache ``<home>/ledger.sqlite``.
* :mod:`~trackbridge.sync.fit` — a run fitted to the destination's limits.
* :mod:`~trackbridge.sync.delta` / :mod:`~trackbridge.sync.points` — what is
  missing at the destination, in bounded memory.
* :mod:`~trackbridge.sync.plan` — create/resume/update/unchanged per run.
* :mod:`~trackbridge.sync.transfer` — one run, in crash-safe order.
* :mod:`~trackbridge.sync.registry` — registered models, versions, aliases.
* :mod:`~trackbridge.sync.engine` — orchestration (thread pool, deletions).
* :mod:`~trackbridge.sync.check` — value-level verification.
* :mod:`~trackbridge.sync.retry`, :mod:`~trackbridge.sync.progress`.
"""
